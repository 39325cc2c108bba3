#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CertReload

struct TestSupportError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A child process for a test: stdout on a pipe, stderr into a file; killed in deinit.
/// `@unchecked Sendable`: one test owns each process; the async waits below hand it to one
/// thread at a time.
final class TestProcess: @unchecked Sendable {
    let pid: pid_t
    let name: String
    private let stdoutFD: Int32
    private var pending: [UInt8] = []
    private var reaped = false

    /// Starts argv[0] (an absolute path, or found on PATH) with the given extra environment.
    init(_ argv: [String], environment: [String: String] = [:], stderrPath: String = "/dev/null") throws {
        name = argv.first ?? "?"
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestSupportError("pipe: errno \(errno)") }
        // The parent's read end must not leak into children; the child gets the write end as fd 1.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)

        var env: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            cursor += 1
        }
        for (key, value) in environment { env[key] = value }
        let envStrings = env.map { "\($0.key)=\($0.value)" }

        var cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        // The test runner's threads may block or ignore signals; the child starts clean.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, &cArgv, &cEnv)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw TestSupportError("cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdoutFD = fds[0]
    }

    deinit {
        stop()
        close(stdoutFD)
    }

    /// The next line of stdout, or nil at end of file; throws when `timeout` passes first.
    func readLine(timeout: Double) throws -> String? {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let left = deadline - monotonicSeconds()
            guard left > 0 else { throw TestSupportError("\(name) printed no line within \(timeout) s") }
            var poller = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(left * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(stdoutFD, &buffer, buffer.count)
            if n < 0 { if errno == EINTR { continue }; throw TestSupportError("read: errno \(errno)") }
            if n == 0 {
                if pending.isEmpty { return nil }
                let line = String(decoding: pending, as: UTF8.self)
                pending = []
                return line
            }
            pending += buffer[..<n]
        }
    }

    /// All of stdout until end of file, bounded by `timeout`.
    func readAll(timeout: Double) throws -> String {
        var lines: [String] = []
        let deadline = monotonicSeconds() + timeout
        while let line = try readLine(timeout: max(0.01, deadline - monotonicSeconds())) { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    /// Waits for the exit status, bounded; nil when it is still running after `timeout`.
    func wait(timeout: Double) -> Int32? {
        let deadline = monotonicSeconds() + timeout
        var status: Int32 = 0
        while true {
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid { reaped = true; return status }
            if rc < 0 { reaped = true; return nil }
            if monotonicSeconds() >= deadline { return nil }
            // Polling a child's exit has no descriptor to wait on; 20 ms steps, bounded.
            usleep(20_000)
        }
    }

    /// SIGTERM, up to five seconds' grace, then SIGKILL; reaps the child.
    func stop() {
        guard !reaped else { return }
        kill(pid, SIGTERM)
        if wait(timeout: 5) == nil && !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            reaped = true
        }
    }
}

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// A fresh directory under /tmp, removed (with everything in it) in deinit.
final class TemporaryDirectory {
    let path: String

    init(_ prefix: String = "certreload-http") throws {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { throw TestSupportError("mkdtemp: errno \(errno)") }
        path = String(cString: result)
    }

    deinit {
        FileTree.remove(path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes a file with the given mode.
    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws -> String {
        let target = file(name)
        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw TestSupportError("open \(target): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw TestSupportError("write \(target): errno \(errno)")
        }
        fchmod(fd, mode)
        return target
    }

    func read(_ name: String) -> String {
        let fd = open(file(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Loopback sockets for tests.
enum Loopback {
    /// A TCP socket bound to 127.0.0.1 on a free port; the caller closes it.
    static func bind(listen: Bool) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { close(fd); throw TestSupportError("bind: errno \(errno)") }
        if listen { guard Glibc.listen(fd, 16) == 0 else { close(fd); throw TestSupportError("listen: errno \(errno)") } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A port nothing listens on right now (bound, then released).
    static func freePort() throws -> UInt16 {
        let (fd, port) = try bind(listen: false)
        close(fd)
        return port
    }
}

/// Where Tests/Support lives, found from this file's path.
func testSupportDirectory(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    // …/Tests/CertReloadTests/HTTP/TestProcess.swift → …/Tests/Support
    parts.removeLast(3)
    return parts.joined(separator: "/") + "/Support"
}

extension TestProcess {
    /// `wait(timeout:)` on a thread of its own: a test waiting for a child leaves the
    /// cooperative pool to the tests that share it.
    func exitStatus(within timeout: Double) async -> Int32? {
        await Blocking.run { _ in self.wait(timeout: timeout) }
    }

    /// `readAll(timeout:)` on a thread of its own.
    func output(within timeout: Double) async throws -> String {
        try await Blocking.run { (_) throws -> String in try self.readAll(timeout: timeout) }
    }

    /// `readLine(timeout:)` on a thread of its own.
    func line(within timeout: Double) async throws -> String? {
        try await Blocking.run { (_) throws -> String? in try self.readLine(timeout: timeout) }
    }
}
