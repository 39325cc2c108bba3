@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// Tests/Support/hostile_server.py in one mode: a peer that misbehaves on purpose. It tells
/// how many client connections are still open, so a test sees that none leaked.
final class HostileServer: @unchecked Sendable {
    // @unchecked Sendable: used by one test at a time; the fields are only read after init
    // except `open` and `buffer`, touched by the owning test only.
    let pid: pid_t
    private(set) var port = 0
    private let output: Int32
    private var buffer: [UInt8] = []
    private(set) var open = 0
    private(set) var accepted = 0

    static let script: String = {
        var path = #filePath
        for _ in 0..<3 { path = Paths.directory(of: path) }
        return path + "/Support/hostile_server.py"
    }()

    init(mode: String, extra: [String] = [], lifetime: Int = 60) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError("pipe") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        let argv = ["python3", HostileServer.script, "--mode", mode, "--lifetime", "\(lifetime)"] + extra
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, "python3", &actions, nil, &cArgs, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw SystemError("posix_spawnp python3", code: rc)
        }
        pid = child
        output = fds[0]
        var found: Int?
        port = 0
        let deadline = Monotonic.now + 15
        while found == nil, Monotonic.now < deadline {
            for line in self.readLines(until: deadline) where line.hasPrefix("READY ") { found = Int(line.dropFirst(6)) }
        }
        guard let found else {
            kill(child, SIGKILL)
            waitpid(child, nil, 0)
            close(fds[0])
            throw SystemError("hostile_server.py did not start", code: ETIMEDOUT)
        }
        port = found
    }

    /// Client ends of connections to this server still open (as `ss` lists them), after
    /// waiting up to `seconds` for them to close; "" when none is. The kernel's view, so it
    /// does not depend on the server noticing.
    func clientConnectionsOpen(within seconds: Double = 3) -> String {
        let deadline = Monotonic.now + seconds
        var listing = ""
        repeat {
            listing = String(decoding: runCapturing(["ss", "-tnpH", "state", "established", "( dport = :\(port) )"]), as: UTF8.self)
                .split(separator: "\n").filter { !$0.isEmpty }.joined(separator: "\n")
            if listing.isEmpty { return "" }
            usleep(100_000)
        } while Monotonic.now < deadline
        return listing
    }

    private func readLines(until deadline: Double) -> [String] {
        var lines: [String] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        repeat {
            var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let wait = max(0, Int32((deadline - Monotonic.now) * 1000))
            guard poll(&poller, 1, wait) > 0 else { break }
            let n = read(output, &chunk, chunk.count)
            if n <= 0 { break }
            buffer += chunk.prefix(n)
            while let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                if line.hasPrefix("OPEN "), let count = Int(line.dropFirst(5)) {
                    if count > open { accepted += count - open }
                    open = count
                }
                lines.append(line)
            }
        } while lines.isEmpty && Monotonic.now < deadline
        return lines
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Monotonic.now + 3
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Monotonic.now > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(20_000)
        }
        close(output)
    }
}

/// Seconds on the monotonic clock.
enum Monotonic {
    static var now: Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
func refusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
