import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// systemd's side of `Type=notify`: an AF_UNIX datagram socket that collects what the
/// service sends.
/// `@unchecked Sendable`: one test owns each socket; the async waits hand it to one thread at a time.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestSupportError("path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw TestSupportError("bind \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    /// The next datagram, or nil after `timeout` seconds.
    func receive(timeout: Double) -> String? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }

    /// Reads datagrams until one has a line starting with `line`; all read on the way.
    func await(_ line: String, timeout: Double = 15) -> [String] {
        let deadline = monotonicSeconds() + timeout
        var seen: [String] = []
        while monotonicSeconds() < deadline, let message = receive(timeout: max(0.01, deadline - monotonicSeconds())) {
            seen.append(message)
            if message.split(separator: "\n").contains(where: { $0.hasPrefix(line) }) { return seen }
        }
        return seen
    }
}

extension NotifySocket {
    /// `receive(timeout:)` on a thread of its own, off the cooperative pool.
    func next(within timeout: Double) async -> String? {
        await Blocking.run { _ in self.receive(timeout: timeout) }
    }

    /// `await(_:timeout:)` on a thread of its own, off the cooperative pool.
    func lines(until line: String, timeout: Double = 15) async -> [String] {
        await Blocking.run { _ in self.await(line, timeout: timeout) }
    }
}

/// The `certreload` executable next to the test bundle (.build/debug/).
func builtCertreload() -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    var directory = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !directory.isEmpty, !directory.hasSuffix("/debug"), !directory.hasSuffix("/release") {
        guard let slash = directory.lastIndex(of: "/") else { return nil }
        directory = String(directory[..<slash])
    }
    let path = directory + "/certreload"
    return access(path, X_OK) == 0 ? path : nil
}

@Suite("Watch: systemd notify handshake")
struct WatchNotifyHandshakeTests {
    @Test("certreload watch: READY=1 and STATUS=, RELOADING=1…READY=1 on SIGHUP (also with a broken file), STOPPING=1 on SIGTERM")
    func handshake() async throws {
        let binary = try #require(builtCertreload(), "build the executable first: swift build")
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let config = fixture.root + "/certreload.toml"
        let good = """
            certbot-dir = "\(fixture.certbotDirectory)"
            state-dir = "\(fixture.state)"
            settle = 0.2
            [target.web]
            lineages = ["example.com"]
            reload = { command = ["/bin/true"] }
            """
        try CertbotLayoutWriter.write(config, good, mode: 0o644)
        let socket = try NotifySocket(path: fixture.root + "/notify.sock")
        let child = try TestProcess(
            [binary, "watch"], environment: ["NOTIFY_SOCKET": socket.path, "CERTRELOAD_CONFIG": config],
            stderrPath: fixture.root + "/stderr.log")

        var seen = await socket.lines(until: "READY=1")
        #expect(seen.last?.contains("READY=1") == true, "\(seen)")
        seen += await socket.lines(until: "STATUS=watching 1 lineage for 1 target; last reload: web at", timeout: 3)
        #expect(seen.contains { $0.contains("STATUS=watching 1 lineage for 1 target") }, "\(seen)")
        // The first pass reloaded (no record yet) and recorded it.
        #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == fixture.sha(version: 1))

        kill(child.pid, SIGHUP)
        seen = await socket.lines(until: "RELOADING=1")
        #expect(seen.last?.hasPrefix("RELOADING=1") == true, "\(seen)")
        seen = await socket.lines(until: "READY=1")
        #expect(seen.last?.contains("READY=1") == true, "\(seen)")

        try CertbotLayoutWriter.write(config, "[target.web\nbroken", mode: 0o644)
        kill(child.pid, SIGHUP)
        seen = await socket.lines(until: "READY=1")
        #expect(seen.contains { $0.hasPrefix("RELOADING=1") }, "\(seen)")
        #expect(seen.last?.contains("READY=1") == true, "\(seen)")
        #expect(await child.exitStatus(within: 0.2) == nil, "still running with the old configuration")

        kill(child.pid, SIGTERM)
        seen = await socket.lines(until: "STOPPING=1")
        #expect(seen.last?.contains("STOPPING=1") == true, "\(seen)")
        let status = try #require(await child.exitStatus(within: 15))
        #expect(status == 0)
    }

    @Test("the watchdog interval is half of WATCHDOG_USEC, and only for this process")
    func watchdogInterval() {
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "20000000"]) == .seconds(10))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(getpid())"]) == .seconds(1))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"]) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: [:]) == nil)
    }
}
