import Testing
@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("signal reload target", .timeLimit(.minutes(1)))
struct SignalReloadTargetTests {
    /// A shell that writes its pid file once its HUP trap is set, and exits 0 on HUP.
    static func startHUPListener(pidFile: String) throws -> ChildProcess {
        try ChildProcess.spawn(argv: [
            "/bin/sh", "-c", "trap 'echo got-hup; exit 0' HUP; echo $$ > \"$0\"; while :; do sleep 0.05; done", pidFile,
        ])
    }

    @Test("HUP reaches the process named by the pid file", arguments: ["HUP", "SIGHUP", "hup"])
    func signalByPIDFile(name: String) async throws {
        let directory = try TemporaryDirectory()
        let pidFile = directory.file("server.pid")
        let child = try Self.startHUPListener(pidFile: pidFile)
        defer { child.signalGroup(SIGKILL) }
        try #require(eventually(within: 10) { directory.read("server.pid").hasSuffix("\n") == true })

        let target = SignalReloadTarget(signal: name, pidFile: pidFile)
        let answer = try await target.reload(context: CapturingLogHandler.context().0)
        #expect(answer == "sent SIGHUP to process \(child.pid) (from pid file \(pidFile))")
        let outcome = child.waitForExit(deadline: Deadline(seconds: 10))
        #expect(outcome == .exited(0))
        #expect(child.output.lines.contains("got-hup"))
    }

    @Test("HUP reaches a unit's MainPID (fake systemd)")
    func signalByUnit() async throws {
        let directory = try TemporaryDirectory()
        let child = try Self.startHUPListener(pidFile: directory.file("server.pid"))
        defer { child.signalGroup(SIGKILL) }
        try #require(eventually(within: 10) { directory.read("server.pid").hasSuffix("\n") == true })
        let fake = try FakeSystemdBus(units: [.init(name: "nginx.service", mainPID: child.pid)])

        let target = SignalReloadTarget(signal: "HUP", unit: "nginx.service", busAddress: fake.address)
        let answer = try await target.reload(context: CapturingLogHandler.context().0)
        #expect(answer.contains("unit nginx.service"))
        #expect(child.waitForExit(deadline: Deadline(seconds: 10)) == .exited(0))
        #expect(child.output.lines.contains("got-hup"))
    }

    @Test("a unit with no main process is refused")
    func unitNotRunning() async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "nginx.service", mainPID: 0)])
        let target = SignalReloadTarget(signal: "HUP", unit: "nginx.service", busAddress: fake.address)
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("nginx.service"))
        #expect(error.fix == "systemctl status nginx.service")
    }

    @Test("a pid file that holds no number is refused, naming the file",
          arguments: ["abc\n", "", "12 34\n", "-5\n", "0x10\n", "99999999999\n", "1\n", "0\n"])
    func garbagePIDFile(contents: String) async throws {
        let directory = try TemporaryDirectory()
        try directory.write("bad.pid", contents)
        let target = SignalReloadTarget(signal: "HUP", pidFile: directory.file("bad.pid"))
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains(directory.file("bad.pid")))
        #expect(error.fix != nil)
    }

    @Test("a missing pid file is refused, naming the file")
    func missingPIDFile() async throws {
        let directory = try TemporaryDirectory()
        let target = SignalReloadTarget(signal: "HUP", pidFile: directory.file("none.pid"))
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message == "pid file \(directory.file("none.pid")) does not exist (is the server running?)")
    }

    @Test("a pid file naming a process that exited is a stale pid file")
    func deadProcess() async throws {
        let directory = try TemporaryDirectory()
        let child = try ChildProcess.spawn(argv: ["/bin/true"])
        #expect(child.waitForExit(deadline: Deadline(seconds: 10)) == .exited(0))
        try directory.write("dead.pid", "\(child.pid)\n")
        let target = SignalReloadTarget(signal: "HUP", pidFile: directory.file("dead.pid"))
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("process \(child.pid) from pid file \(directory.file("dead.pid")) is not running"))
    }

    @Test("an unknown signal name is refused")
    func unknownSignal() async throws {
        let target = SignalReloadTarget(signal: "RELOAD", pidFile: "/nonexistent.pid")
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: CapturingLogHandler.context().0) }
        #expect(error.message == "unknown signal 'RELOAD'")
    }

    @Test("pid parsing accepts digits with surrounding whitespace only")
    func parsing() {
        #expect(SignalReloadTarget.parsePID(Array("1234\n".utf8)) == 1234)
        #expect(SignalReloadTarget.parsePID(Array("  42 \r\n".utf8)) == 42)
        #expect(SignalReloadTarget.parsePID(Array("42abc".utf8)) == nil)
        #expect(SignalReloadTarget.parsePID(Array("+42".utf8)) == nil)
        #expect(SignalReloadTarget.parsePID([]) == nil)
        #expect(SignalNames.number("usr1") == SIGUSR1)
        #expect(SignalNames.number("SIGUSR2") == SIGUSR2)
        #expect(SignalNames.name(of: SIGHUP) == "SIGHUP")
    }
}
