@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// Faults of the command and signal reload kinds (issue 11): each ends within its bound with
/// its code, signals nothing it should not, and leaves no child behind.
@Suite("Reliability: faults in reload commands and pid files")
struct ProcessFaultTests {
    static let faults = [
        "command-hangs", "command-ignores-sigterm", "command-exits-3", "command-prints-20MB",
        "command-daemonizes-holding-stdout", "pidfile-dead-pid", "pidfile-reused-pid", "pidfile-garbage",
        "pidfile-fifo", "control-pidfile-live",
    ]

    @Test("a command or pid-file fault ends in time with its code", arguments: faults)
    func processFault(_ fault: String) async throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-process-fault")
        defer { FileTree.remove(root) }
        let marker = root + "/pids"
        var bystander: pid_t = 0
        defer { if bystander > 0 { kill(bystander, SIGKILL); waitpid(bystander, nil, 0) } }
        let target: any ReloadTarget
        let expected: ProblemCode?
        let bound: Double
        switch fault {
        case "command-hangs":
            target = CommandReloadTarget(argv: ["/bin/sh", "-c", "echo $$ >> \"$0\"; exec sleep 60", marker], timeout: 0.5)
            (expected, bound) = (.reloadTimeout, 0.5 + CommandReloadTarget.terminationGrace + 3)
        case "command-ignores-sigterm":
            target = CommandReloadTarget(argv: ["/bin/sh", "-c", "trap '' TERM; echo $$ >> \"$0\"; sleep 60 & echo $! >> \"$0\"; wait", marker], timeout: 0.5)
            (expected, bound) = (.reloadTimeout, 0.5 + CommandReloadTarget.terminationGrace + 3)
        case "command-exits-3":
            target = CommandReloadTarget(argv: ["/bin/sh", "-c", "echo $$ >> \"$0\"; echo reload refused >&2; exit 3", marker], timeout: 5)
            (expected, bound) = (.reloadFailed, 5)
        case "command-prints-20MB":
            target = CommandReloadTarget(argv: ["/bin/sh", "-c", "echo $$ >> \"$0\"; head -c 20000000 /dev/zero | tr '\\0' x; exit 1", marker], timeout: 10)
            (expected, bound) = (.reloadFailed, 10)
        case "command-daemonizes-holding-stdout":
            // A reload command that starts a helper in the background which keeps stdout open:
            // the command is done when it exits, the helper goes with its process group.
            target = CommandReloadTarget(argv: ["/bin/sh", "-c", "sleep 60 & echo $! >> \"$0\"; exit 0", marker], timeout: 2)
            (expected, bound) = (nil, 2 + CommandReloadTarget.terminationGrace + 3)
        default:
            let pidFile = root + "/server.pid"
            switch fault {
            case "pidfile-dead-pid":
                var child: pid_t = 0
                var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                defer { argv.forEach { free($0) } }
                posix_spawn(&child, "/bin/true", nil, nil, &argv, environ)
                waitpid(child, nil, 0)
                try writeFile(pidFile, "\(child)\n")
            case "pidfile-reused-pid", "control-pidfile-live":
                // A bystander process; for "reused" the pid file is older than it.
                var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("60"), nil]
                defer { argv.forEach { free($0) } }
                posix_spawn(&bystander, "/bin/sleep", nil, nil, &argv, environ)
                try writeFile(pidFile, "\(bystander)\n")
                if fault == "pidfile-reused-pid" {
                    var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
                    utimensat(AT_FDCWD, pidFile, &times, 0)
                }
            case "pidfile-fifo":
                try HostileFiles.makeFIFO(pidFile)
            default:
                try writeFile(pidFile, "1234; rm -rf /\n")
            }
            // The control sends SIGCONT: harmless to sleep, and proves the signal path works.
            target = SignalReloadTarget(signal: fault == "control-pidfile-live" ? "CONT" : "HUP", pidFile: pidFile)
            (expected, bound) = (fault == "control-pidfile-live" ? nil : .reloadFailed, 2)
        }
        let (context, store) = CapturingLogHandler.context(timeout: 30)
        let started = Monotonic.now
        var code: ProblemCode?
        var message = ""
        do {
            message = try await target.reload(context: context)
        } catch {
            code = error.code
            message = error.message
        }
        let elapsed = Monotonic.now - started
        #expect(code == expected, "\(message)")
        #expect(elapsed < bound, "took \(elapsed) s")
        #expect(message.count < 4000, "a flood of output is not copied whole")
        #expect(store.messages.joined().count < 200_000, "the log keeps a bounded part of the output")
        if fault == "pidfile-reused-pid" {
            #expect(message.contains("'sleep'") && message.contains("reused"), "\(message)")
            #expect(kill(bystander, 0) == 0, "the unrelated process was not signalled")
        }
        // Every process the command started is gone (or a zombie about to be reaped by init),
        // except a helper that a successful command left in the background: certreload does
        // not wait for it nor kill it (a reload command may start a daemon); it only stops
        // reading its output.
        if fault == "command-daemonizes-holding-stdout", case .success(let bytes) = SafeFile.read(marker),
            let helper = pid_t(String(decoding: bytes, as: UTF8.self).split(separator: "\n").first ?? "")
        {
            #expect(kill(helper, 0) == 0, "the helper is left alone")
            kill(helper, SIGKILL)
        } else if case .success(let bytes) = SafeFile.read(marker) {
            for pid in String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap({ pid_t($0) }) {
                #expect(eventually(within: 5) { kill(pid, 0) != 0 || Self.isZombie(pid) }, "process \(pid) left running")
            }
        }
        FaultLedger.record(fault.hasPrefix("pidfile") || fault.hasPrefix("control-pid") ? "reload signal" : "reload command", fault, outcome: code?.rawValue ?? "ok", seconds: elapsed)
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard case .success(let bytes) = SafeFile.read("/proc/\(pid)/stat", limit: 4096),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count
        else { return false }
        return bytes[close + 2] == UInt8(ascii: "Z")
    }
}
