import Testing
@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("command reload target", .timeLimit(.minutes(1)))
struct CommandReloadTargetTests {
    @Test("a command that exits 0 succeeds and its output goes to the log")
    func success() async throws {
        let (context, log) = CapturingLogHandler.context()
        let target = CommandReloadTarget(argv: ["/bin/sh", "-c", "echo reloading; echo done >&2"], timeout: 10)
        let answer = try await target.reload(context: context)
        #expect(answer == "ran /bin/sh -c 'echo reloading; echo done >&2': exit status 0: done")
        #expect(log.messages.contains("reloading"))
        #expect(log.messages.contains("done"))
    }

    @Test("a non-zero exit is reload-failed with the last lines of output")
    func failure() async throws {
        let target = CommandReloadTarget(argv: ["/bin/sh", "-c", "echo checking; echo 'fatal: bad key' >&2; exit 3"], timeout: 10)
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("exited with status 3"))
        #expect(error.message.contains("fatal: bad key"))
        #expect(error.message.contains("checking"))
    }

    @Test("a command past its timeout is killed with its process group: reload-timeout")
    func timeout() async throws {
        let directory = try TemporaryDirectory()
        // Ignores SIGTERM and leaves a grandchild that records its pid; both must die.
        let script = "trap '' TERM; sleep 30 & echo $! > \"$0\"; wait; sleep 30"
        let target = CommandReloadTarget(argv: ["/bin/sh", "-c", script, directory.file("grandchild.pid")], timeout: 0.5)
        let start = MonotonicClock.now()
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        let elapsed = MonotonicClock.now() - start
        #expect(error.code == .reloadTimeout)
        #expect(error.message.contains("did not finish within 0.5 s"))
        #expect(elapsed < 0.5 + CommandReloadTarget.terminationGrace + 10, "bounded by the timeout and the grace period (took \(elapsed) s)")
        let grandchild = try #require(SignalReloadTarget.parsePID(Array(directory.read("grandchild.pid").utf8)))
        // The grandchild was in the group: gone (or a zombie about to be reaped by init).
        #expect(eventually(within: 5) { kill(grandchild, 0) != 0 || Self.isZombie(grandchild) })
    }

    @Test("the context's timeout bounds the command too")
    func contextTimeout() async throws {
        let target = CommandReloadTarget(argv: ["/bin/sleep", "30"], timeout: 60)
        let start = MonotonicClock.now()
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context(timeout: 0.3).0)
        }
        #expect(error.code == .reloadTimeout)
        #expect(MonotonicClock.now() - start < 3)
    }

    @Test("argv with spaces, quotes and shell characters is passed verbatim (no shell)")
    func argvVerbatim() async throws {
        let (context, log) = CapturingLogHandler.context()
        let arguments = ["a b", "\"quoted\"", "it's", "$HOME", "*", "; rm -rf /", "`id`", ""]
        let target = CommandReloadTarget(argv: ["/usr/bin/printf", "[%s]\\n"] + arguments, timeout: 10)
        _ = try await target.reload(context: context)
        #expect(log.infoMessages == arguments.map { "[\($0)]" })
    }

    @Test("a program that does not exist is reload-failed")
    func missingProgram() async throws {
        let target = CommandReloadTarget(argv: ["/nonexistent/reload-me"], timeout: 10)
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("cannot run /nonexistent/reload-me"))
    }

    @Test("output kept for the log is bounded")
    func boundedOutput() async throws {
        let (context, log) = CapturingLogHandler.context()
        let target = CommandReloadTarget(
            argv: ["/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; echo last"],
            timeout: 20)
        _ = try await target.reload(context: context)
        let messages = log.infoMessages
        let kept = messages.reduce(0) { $0 + $1.utf8.count + 1 }
        #expect(kept <= CommandReloadTarget.outputLimit + 200)
        #expect(messages.last == "last")
        #expect(messages.first?.contains("earlier bytes of output") == true)
    }

    @Test("display quoting can be pasted into a shell")
    func quoting() {
        #expect(ShellQuoting.join(["/usr/sbin/postfix", "reload"]) == "/usr/sbin/postfix reload")
        #expect(ShellQuoting.quote("it's") == "'it'\\''s'")
        #expect(ShellQuoting.quote("") == "''")
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard case .success(let bytes) = SafeFile.read("/proc/\(pid)/stat", limit: 4096) else { return false }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        return text[close...].dropFirst(2).first == "Z"
    }
}
