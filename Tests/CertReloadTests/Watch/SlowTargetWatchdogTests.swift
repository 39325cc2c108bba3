import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The daemon under the two-thread cooperative pool of a 2-core machine: two targets whose
/// reload commands block for much longer than the watchdog interval must not starve the
/// watchdog, a third target, or SIGTERM.
@Suite("Watch: slow targets do not stall the daemon")
struct SlowTargetWatchdogTests {
    /// `/bin/sleep` with an argument no other process on the machine uses, to find its processes.
    static func sleepSeconds() -> String { "77.\(getpid() % 1000)\(Int.random(in: 100...999))" }

    /// Pids of running processes whose command line is exactly `argv`.
    static func processes(running argv: [String]) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = direntName(entry)
            guard let pid = Int32(name) else { continue }
            let fd = open("/proc/\(pid)/cmdline", O_RDONLY)
            guard fd >= 0 else { continue }
            var bytes = [UInt8](repeating: 0, count: 512)
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard count > 0 else { continue }
            let words = bytes.prefix(count).split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
                String(decoding: $0, as: UTF8.self)
            }
            if words == argv { found.append(pid) }
        }
        return found
    }

    static func tail(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "(no log)" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 1 << 16)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return String(decoding: bytes.prefix(max(count, 0)).suffix(3000), as: UTF8.self)
    }

    @Test("two reloads blocked past the watchdog interval: pings keep their schedule, a fast target deploys, SIGTERM ends it all")
    func slowTargets() async throws {
        let binary = try #require(builtCertreload(), "build the executable first: swift build")
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        // Version 1 is recorded as deployed for every target: the start is quiet.
        let store = StateStore(directory: fixture.state)
        for name in ["fast", "slow1", "slow2"] {
            var state = TargetState(target: name)
            state.deployedSHA256 = fixture.sha(version: 1)
            try store.save(state)
        }
        let seconds = Self.sleepSeconds()
        let marker = fixture.root + "/fast-deployed"
        let config = try fixture.writeConfig(
            """
            settle = 0.2
            [target.slow1]
            lineages = ["example.com"]
            reload = { command = ["/bin/sleep", "\(seconds)"], timeout = 300 }
            [target.slow2]
            lineages = ["example.com"]
            reload = { command = ["/bin/sleep", "\(seconds)"], timeout = 300 }
            [target.fast]
            lineages = ["example.com"]
            reload = { command = ["/usr/bin/touch", "\(marker)"] }
            """)

        let socket = try NotifySocket(path: fixture.root + "/notify.sock")
        // WATCHDOG_USEC=2 s: systemd would kill a service that stays silent for 2 s; it pings every 1 s.
        let child = try TestProcess(
            [binary, "watch"],
            environment: ["NOTIFY_SOCKET": socket.path, "CERTRELOAD_CONFIG": config, "WATCHDOG_USEC": "2000000"],
            stderrPath: fixture.root + "/stderr.log")
        defer {
            kill(child.pid, SIGKILL)
            _ = child.wait(timeout: 5)
        }
        let ready = await socket.lines(until: "READY=1")
        try #require(ready.contains { $0.contains("READY=1") }, "\(ready)")

        // certbot renews: all three targets wake; two block in their reload command.
        try fixture.issue(version: 2)
        var slowStarted = false
        var fastDone = false
        var pings: [Double] = []
        let until = monotonicSeconds() + 12
        while monotonicSeconds() < until {
            guard let message = await socket.next(within: 0.5) else { continue }
            if message.contains("WATCHDOG=1") { pings.append(monotonicSeconds()) }
            if !slowStarted { slowStarted = Self.processes(running: ["/bin/sleep", seconds]).count == 2 }
            if !fastDone, access(marker, F_OK) == 0 {
                fastDone = true
                // Deployed while both slow reloads are still blocked: not behind them.
                #expect(Self.processes(running: ["/bin/sleep", seconds]).count == 2, "the fast target waited for the slow ones")
            }
        }
        #expect(slowStarted, "both slow reload commands ran")
        #expect(fastDone, "the fast target was deployed while the slow reloads blocked")
        #expect(store.load("fast").deployedSHA256 == fixture.sha(version: 2))
        // Pings on schedule the whole time: never a gap that systemd's 2 s watchdog would punish.
        #expect(pings.count >= 8, "\(pings.count) WATCHDOG=1 in 12 s")
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        #expect((gaps.max() ?? 99) < 2, "longest gap between watchdog pings: \(gaps.max() ?? 99) s")

        // SIGTERM: the reloads in flight get the 10 s grace, then are cut short and killed.
        kill(child.pid, SIGTERM)
        let stopping = await socket.lines(until: "STOPPING=1", timeout: 5)
        #expect(stopping.contains { $0.contains("STOPPING=1") }, "\(stopping)")
        // Keep reading the socket as systemd does: a full datagram queue (net.unix.max_dgram_qlen,
        // 10) would block the service's next sd_notify.
        var status: Int32?
        let exitBy = monotonicSeconds() + 20
        while status == nil, monotonicSeconds() < exitBy {
            _ = await socket.next(within: 0.1)
            status = await child.exitStatus(within: 0.1)
        }
        #expect(status != nil, "certreload watch did not exit within the grace period after SIGTERM; its log:\n\(Self.tail(fixture.root + "/stderr.log"))")
        #expect(Self.processes(running: ["/bin/sleep", seconds]).isEmpty, "the slow commands' process groups were killed")
        // Cut short, not deployed: the record still says version 1 for the slow targets.
        #expect(store.load("slow1").deployedSHA256 == fixture.sha(version: 1))
    }
}
