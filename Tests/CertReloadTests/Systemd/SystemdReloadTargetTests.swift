import Logging
import Testing
@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Against a private dbus-daemon with a FAKE systemd (python-dbusmock, Tests/Support/FakeSystemd.py):
/// systemd as PID 1 is not available where the tests run.
@Suite("systemd reload target (fake systemd on a private bus)", .timeLimit(.minutes(1)))
struct SystemdReloadTargetTests {
    @Test("each mode calls its Manager method with the unit and \"replace\"", arguments: [
        (ReloadConfiguration.SystemdMode.reload, "ReloadUnit"),
        (.restart, "RestartUnit"),
        (.reloadOrRestart, "ReloadOrRestartUnit"),
    ])
    func modeCallsMethod(mode: ReloadConfiguration.SystemdMode, method: String) async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "ok.service")])
        let target = SystemdReloadTarget(unit: "ok.service", mode: mode, busAddress: fake.address)
        let (context, _) = CapturingLogHandler.context()
        let answer = try await target.reload(context: context)
        #expect(answer == "systemd \(method) ok.service: done")
        #expect(fake.calls.contains("\(method) \"ok.service\" \"replace\""))
        #expect(fake.calls.filter { $0.hasSuffix("Unit \"ok.service\" \"replace\"") }.count == 1)
    }

    @Test("a job that ends 'failed' is reload-failed, naming the unit, with journalctl as the fix")
    func failedJob() async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "nginx.service", result: "failed")])
        let target = SystemdReloadTarget(unit: "nginx.service", busAddress: fake.address)
        let (context, _) = CapturingLogHandler.context()
        let error = try await #require(throws: ReloadError.self) { try await target.reload(context: context) }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("nginx.service"))
        #expect(error.message.contains("'failed'"))
        #expect(error.fix == "journalctl -u nginx.service -n 50")
    }

    @Test("other failure results fail too", arguments: ["canceled", "timeout", "dependency", "skipped"])
    func otherResults(result: String) async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "x.service", result: result)])
        let target = SystemdReloadTarget(unit: "x.service", busAddress: fake.address)
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context().0)
        }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("'\(result)'"))
    }

    @Test("a job that never ends times out within the context's bound")
    func jobNeverEnds() async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "hang.service", result: "never")])
        let target = SystemdReloadTarget(unit: "hang.service", busAddress: fake.address)
        let start = MonotonicClock.now()
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context(timeout: 1).0)
        }
        let elapsed = MonotonicClock.now() - start
        #expect(error.code == .reloadTimeout)
        #expect(error.message.contains("hang.service"))
        #expect(elapsed >= 0.9 && elapsed < 15, "bounded by the context timeout, not by the job (took \(elapsed) s)")
        #expect(fake.calls.contains("ReloadUnit \"hang.service\" \"replace\""))
    }

    @Test("an unknown unit is reload-failed naming it")
    func unknownUnit() async throws {
        let fake = try FakeSystemdBus(units: [.init(name: "ok.service")])
        let target = SystemdReloadTarget(unit: "nope.service", busAddress: fake.address)
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context().0)
        }
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("nope.service"))
        #expect(error.message.contains("no unit"))
    }

    @Test("MainPID of a unit comes from GetUnit and the Service property")
    func mainPID() throws {
        let fake = try FakeSystemdBus(units: [.init(name: "nginx.service", mainPID: 4242)])
        let manager = try SystemdManager(busAddress: fake.address)
        #expect(try manager.mainPID(unit: "nginx.service") == 4242)
        #expect(fake.calls.contains("GetUnit \"nginx.service\""))
        #expect(throws: BusError.self) { try manager.mainPID(unit: "other.service") }
    }

    @Test("no bus at the address is reload-unreachable")
    func unreachable() async throws {
        let directory = try TemporaryDirectory()
        let target = SystemdReloadTarget(unit: "ok.service", busAddress: "unix:path=\(directory.file("none"))")
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context().0)
        }
        #expect(error.code == .reloadUnreachable)
    }

    @Test("a bus without systemd on it is reload-unreachable")
    func noSystemdOnBus() async throws {
        let directory = try TemporaryDirectory()
        let daemon = try ChildProcess.spawn(argv: [
            "dbus-daemon", "--session", "--nofork", "--print-address", "--address=unix:path=\(directory.file("bus"))",
        ])
        defer { daemon.signalGroup(SIGKILL) }
        let address = try #require(daemon.readLine(deadline: Deadline(seconds: 10)))
        let target = SystemdReloadTarget(unit: "ok.service", busAddress: address)
        let error = try await #require(throws: ReloadError.self) {
            try await target.reload(context: CapturingLogHandler.context().0)
        }
        #expect(error.code == .reloadUnreachable, "\(error.message)")
    }
}
