#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A point on the monotonic clock after which the probe gives up.
struct ProbeDeadline: Sendable {
    /// Nanoseconds on CLOCK_MONOTONIC.
    let instant: Int64

    static func now() -> Int64 { MonotonicClock.nanoseconds() }

    init(secondsFromNow seconds: Double) {
        let clamped = min(max(seconds, 0), 86_400)
        instant = ProbeDeadline.now() + Int64(clamped * 1_000_000_000)
    }

    init(instant: Int64) { self.instant = instant }

    /// The earlier of two deadlines.
    func capped(by other: ProbeDeadline) -> ProbeDeadline { ProbeDeadline(instant: min(instant, other.instant)) }

    var remainingMilliseconds: Int32 {
        let left = (instant - ProbeDeadline.now()) / 1_000_000
        return Int32(clamping: max(left, 0))
    }

    var remainingSeconds: Double { Double(max(instant - ProbeDeadline.now(), 0)) / 1_000_000_000 }

    var hasPassed: Bool { ProbeDeadline.now() >= instant }
}

/// Why talking to the server failed below TLS: a timeout, a reset, the server hanging up.
struct SocketFailure: Error, Sendable {
    enum Kind: Sendable { case timedOut, closed, system }
    var kind: Kind
    var detail: String
}

/// A connected, non-blocking TCP socket; closed with the object.
///
/// Every wait goes through poll() with the caller's deadline, so no call can hang.
final class ProbeSocket {
    let fd: Int32
    /// The address it is connected to, for messages ("127.0.0.1:25").
    let peer: String

    private init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
    }

    deinit { close(fd) }

    /// Takes over a connected, non-blocking stream socket (the STARTTLS fuzz target's socketpair).
    static func adopting(_ fd: Int32, peer: String) -> ProbeSocket { ProbeSocket(fd: fd, peer: peer) }

    /// Resolves `target` and tries each address until one connects.
    ///
    /// Name resolution uses getaddrinfo, which the deadline cannot bound; give an IP
    /// address as `connect` where that matters.
    static func connect(
        to target: DialTarget, connectDeadline: ProbeDeadline
    ) -> Result<ProbeSocket, SocketFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        hints.ai_flags = ProbeAddress.isIPAddress(target.host) ? AI_NUMERICHOST : AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0, let list else {
            let reason = status == EAI_SYSTEM ? errnoDescription(errno) : String(cString: gai_strerror(status))
            return .failure(SocketFailure(kind: .system, detail: "cannot resolve \(target.host): \(reason)"))
        }
        defer { freeaddrinfo(list) }

        var failures: [(address: String, detail: String)] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            entry = current.pointee.ai_next
            let address = ProbeSocket.text(current.pointee.ai_addr, port: target.port)
            switch attempt(current.pointee, deadline: connectDeadline) {
            case .success(let fd): return .success(ProbeSocket(fd: fd, peer: address))
            case .failure(let failure):
                failures.append((address, failure.detail))
                if failure.kind == .timedOut {
                    return .failure(SocketFailure(kind: .timedOut, detail: summary(of: failures, target: target)))
                }
            }
        }
        return .failure(SocketFailure(kind: .system, detail: summary(of: failures, target: target)))
    }

    /// "Connection refused", or "[::1]:25: Connection refused; 127.0.0.1:25: …" when several addresses were tried.
    private static func summary(of failures: [(address: String, detail: String)], target: DialTarget) -> String {
        if failures.isEmpty { return "no address for \(target.host)" }
        if failures.count == 1 && failures[0].address == target.authority { return failures[0].detail }
        return failures.map { "\($0.address): \($0.detail)" }.joined(separator: "; ")
    }

    private static func attempt(_ info: addrinfo, deadline: ProbeDeadline) -> Result<Int32, SocketFailure> {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(info.ai_family, type, info.ai_protocol)
        guard fd >= 0 else { return .failure(SocketFailure(kind: .system, detail: errnoDescription(errno))) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if SystemCall.connect(fd, info.ai_addr, info.ai_addrlen) == 0 { return .success(fd) }
        guard errno == EINPROGRESS || errno == EINTR else {
            let failure = SocketFailure(kind: .system, detail: errnoDescription(errno))
            close(fd)
            return .failure(failure)
        }
        switch wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) {
        case .failure(let failure):
            close(fd)
            return .failure(failure)
        case .success:
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
            if error != 0 {
                close(fd)
                return .failure(SocketFailure(kind: .system, detail: errnoDescription(error)))
            }
            return .success(fd)
        }
    }

    /// Waits until `fd` is ready for `events`, or the deadline passes.
    static func wait(fd: Int32, events: Int16, deadline: ProbeDeadline) -> Result<Void, SocketFailure> {
        while true {
            if deadline.hasPassed { return .failure(SocketFailure(kind: .timedOut, detail: "timed out")) }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready: Int32
            switch valueOrErrno(retryOnInterrupt: false, { poll(&entry, 1, max(deadline.remainingMilliseconds, 1)) }) {
            case .success(let count): ready = count
            case .failure(let error) where error.rawValue == EINTR: continue  // the deadline is checked again
            case .failure(let error): return .failure(SocketFailure(kind: .system, detail: "poll: \(errnoDescription(error.rawValue))"))
            }
            if ready == 0 { continue }
            // POLLHUP/POLLERR: let the following read/write/getsockopt report the cause.
            return .success(())
        }
    }

    /// Sends all bytes (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    func send(_ bytes: [UInt8], deadline: ProbeDeadline) -> Result<Void, SocketFailure> {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                SystemCall.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                if case .failure(let failure) = ProbeSocket.wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) {
                    return .failure(failure)
                }
            case EPIPE, ECONNRESET:
                return .failure(SocketFailure(kind: .closed, detail: "the server closed the connection"))
            default:
                return .failure(SocketFailure(kind: .system, detail: "send: \(errnoDescription(errno))"))
            }
        }
        return .success(())
    }

    /// Receives what is there (up to `limit` bytes), waiting for at least one byte.
    /// An empty array means the server closed the connection.
    func receive(limit: Int = 16_384, deadline: ProbeDeadline) -> Result<[UInt8], SocketFailure> {
        var buffer = [UInt8](repeating: 0, count: limit)
        while true {
            let count = buffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress!, raw.count, 0) }
            if count >= 0 { return .success(Array(buffer.prefix(count))) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                if case .failure(let failure) = ProbeSocket.wait(fd: fd, events: Int16(POLLIN), deadline: deadline) {
                    return .failure(failure)
                }
            case ECONNRESET:
                return .failure(SocketFailure(kind: .closed, detail: "the server reset the connection"))
            default:
                return .failure(SocketFailure(kind: .system, detail: "recv: \(errnoDescription(errno))"))
            }
        }
    }

    private static func text(_ address: UnsafeMutablePointer<sockaddr>?, port: UInt16) -> String {
        guard let address else { return "?" }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = Int32(address.pointee.sa_family)
        if family == AF_INET {
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                _ = inet_ntop(AF_INET, &v4.pointee.sin_addr, &buffer, socklen_t(buffer.count))
            }
        } else if family == AF_INET6 {
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                _ = inet_ntop(AF_INET6, &v6.pointee.sin6_addr, &buffer, socklen_t(buffer.count))
            }
        }
        let host = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return ProbeAddress.authority(host: host, port: port)
    }
}

/// Reads CRLF lines from a socket, keeping what came after the last line it returned.
struct LineReader {
    /// Longest line accepted; a server sending more is misbehaving.
    static let maximumLineLength = 4096
    private(set) var buffered: [UInt8] = []

    /// The next line without its CR LF.
    mutating func readLine(from socket: ProbeSocket, deadline: ProbeDeadline) -> Result<String, SocketFailure> {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffered[..<newline])
                buffered.removeSubrange(...newline)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return .success(String(decoding: line, as: UTF8.self))
            }
            if buffered.count > LineReader.maximumLineLength {
                return .failure(
                    SocketFailure(kind: .system, detail: "the server sent a line longer than \(LineReader.maximumLineLength) bytes"))
            }
            switch socket.receive(deadline: deadline) {
            case .failure(let failure): return .failure(failure)
            case .success(let bytes):
                if bytes.isEmpty {
                    return .failure(SocketFailure(kind: .closed, detail: "the server closed the connection"))
                }
                buffered += bytes
            }
        }
    }
}
