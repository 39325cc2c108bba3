#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
@testable import CertReload
@testable import CertReloadDemo

/// Test failures of the peer harness, with what the peer printed.
struct PeerError: Error, CustomStringConvertible {
    var description: String
}

/// A real server process on loopback (openssl s_server, the STARTTLS script), stopped with the object.
///
/// Readiness is a line the peer prints once it listens ("ACCEPT …", "READY <port>"), read
/// from a pipe with a deadline: no sleeps. Each peer also bounds its own life.
final class LoopbackPeer {
    let pid: pid_t
    let port: UInt16
    private let output: Int32
    private let logPath: String

    /// Starts `argv` (searched on PATH) and waits up to `readyWithin` seconds for its readiness line.
    init(_ argv: [String], logPath: String, readyWithin: Double = 20, portFrom parse: (String) -> UInt16?) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PeerError(description: "pipe: \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        // The calling thread (a Dispatch or cooperative-pool worker) blocks signals, and a child
        // inherits that mask: clear it, or SIGTERM would never reach the peer.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let status = posix_spawnp(&child, argv[0], &actions, &attributes, &cArgs, environ)
        close(fds[1])
        guard status == 0 else {
            close(fds[0])
            throw PeerError(description: "cannot start \(argv[0]): \(String(cString: strerror(status)))")
        }
        pid = child
        output = fds[0]
        self.logPath = logPath

        // Read stdout lines until one names the port, within the deadline.
        let deadline = ProbeDeadline(secondsFromNow: readyWithin)
        var pending: [UInt8] = []
        var found: UInt16?
        var seen: [String] = []
        while found == nil {
            var entry = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, max(deadline.remainingMilliseconds, 1))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 || deadline.hasPassed { break }
            var buffer = [UInt8](repeating: 0, count: 1024)
            let count = read(output, &buffer, buffer.count)
            if count <= 0 { break }
            pending += buffer.prefix(count)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                seen.append(line)
                if let value = parse(line) { found = value }
            }
        }
        guard let found else {
            let log = LoopbackPeer.readLog(logPath)
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            close(output)
            throw PeerError(description: "\(argv.joined(separator: " ")) never became ready; stdout: \(seen) stderr: \(log)")
        }
        port = found
    }

    deinit {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        close(output)
    }

    var log: String { LoopbackPeer.readLog(logPath) }

    static func readLog(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `openssl s_server` with implicit TLS on 127.0.0.1 (a free port it picks), ending after `lifetime` seconds.
    static func openSSLServer(
        certificate: String, key: String, chain: String? = nil, directory: String, address: String = "127.0.0.1",
        lifetime: Int = 120
    ) throws -> LoopbackPeer {
        let accept = address.contains(":") ? "[\(address)]:0" : "\(address):0"
        var argv = [
            "timeout", "\(lifetime)", "openssl", "s_server", "-accept", accept, "-cert", certificate, "-key", key,
            "-www",
        ]
        if let chain { argv += ["-cert_chain", chain] }
        return try LoopbackPeer(argv, logPath: directory + "/s_server.log") { line in
            // "ACCEPT 127.0.0.1:40123"
            guard line.hasPrefix("ACCEPT "), let colon = line.lastIndex(of: ":") else { return nil }
            return UInt16(line[line.index(after: colon)...])
        }
    }

    /// Tests/Support/starttls_server.py with the given flags.
    static func startTLSServer(_ flags: [String], directory: String, lifetime: Int = 120) throws -> LoopbackPeer {
        let argv = ["python3", supportScript("starttls_server.py"), "--lifetime", "\(lifetime)"] + flags
        return try LoopbackPeer(argv, logPath: directory + "/starttls_server.log") { line in
            line.hasPrefix("READY ") ? UInt16(line.dropFirst(6)) : nil
        }
    }

    static func supportScript(_ name: String, file: String = #filePath) -> String {
        // Tests/CertReloadTests/Probe/ProbePeers.swift -> Tests/Support/<name>
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/Support/" + name
    }
}

/// Whether this machine has an IPv6 loopback to listen on.
func hasIPv6Loopback() -> Bool {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    let length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    } == 0
}

/// A TCP port on 127.0.0.1 that is bound but not listening: connecting to it is refused.
final class ClosedPort {
    let fd: Int32
    let port: UInt16

    init() throws {
        (fd, port) = try bindLoopback(listen: false)
    }

    deinit { close(fd) }
}

/// A listener that never accepts and never speaks: the kernel completes the TCP handshake.
final class SilentListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        (fd, port) = try bindLoopback(listen: true)
    }

    deinit { close(fd) }
}

private func bindLoopback(listen shouldListen: Bool) throws -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw PeerError(description: "socket: \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else {
        close(fd)
        throw PeerError(description: "bind: \(errno)")
    }
    if shouldListen && listen(fd, 8) != 0 {
        close(fd)
        throw PeerError(description: "listen: \(errno)")
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// Certificates for the probe tests, written as PEM files into a fresh directory.
final class ProbeFixture {
    let directory: String
    let ca: TestCA
    /// The renewed leaf (what cert.pem holds now), for `hostnames`.
    let leaf: Certificate
    let leafKey: PrivateKey
    /// The leaf deployed before the renewal.
    let previous: Certificate
    let previousKey: PrivateKey
    /// A self-signed certificate for the same names, as a server makes when it cannot load its own.
    let selfSigned: Certificate
    let selfSignedKey: PrivateKey

    init(hostnames: [String] = ["mail.example.test"]) throws {
        directory = try FileTree.makeTemporaryDirectory(prefix: "certreload-probe")
        let now = Int64(time(nil))
        ca = try TestCA(now: now)
        leafKey = try CertificateFactory.makeKey(.ecdsaP256)
        leaf = try ca.issue(names: hostnames, key: leafKey, notBefore: now - 3600, notAfter: now + 90 * 86_400)
        previousKey = try CertificateFactory.makeKey(.ecdsaP256)
        previous = try ca.issue(names: hostnames, key: previousKey, notBefore: now - 80 * 86_400, notAfter: now + 10 * 86_400)
        selfSignedKey = try CertificateFactory.makeKey(.ecdsaP256)
        selfSigned = try CertificateFactory.makeCertificate(
            commonName: "localhost", subjectAltNames: ["localhost"], key: selfSignedKey,
            notBefore: now - 3600, notAfter: now + 365 * 86_400)

        try write("root.pem", ca.root.pem)
        try write("chain.pem", ca.intermediate.pem)
        try write("cert.pem", leaf.pem)
        try write("fullchain.pem", leaf.pem + ca.intermediate.pem)
        try write("privkey.pem", leafKey.pem(), mode: 0o600)
        try write("previous-fullchain.pem", previous.pem + ca.intermediate.pem)
        try write("previous-privkey.pem", previousKey.pem(), mode: 0o600)
        try write("selfsigned.pem", selfSigned.pem)
        try write("selfsigned-key.pem", selfSignedKey.pem(), mode: 0o600)
    }

    deinit { FileTree.remove(directory) }

    func path(_ name: String) -> String { directory + "/" + name }

    private func write(_ name: String, _ text: String, mode: mode_t = 0o644) throws {
        try CertbotLayoutWriter.write(path(name), text, mode: mode)
    }
}
