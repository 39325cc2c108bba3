public import CertReload
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import Synchronization
internal import COpenSSL

/// A TCP listener on 127.0.0.1 (a free port) that hands each connection to a handler on its
/// own thread. For the demo only: one connection at a time, two-second socket timeouts.
final class LoopbackListener: Sendable {
    let port: UInt16
    private let fd: Int32
    private let done = DispatchSemaphore(value: 0)

    init(name: String, handler: @escaping @Sendable (Int32) -> Void) throws(SystemError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = SystemError("bind/listen 127.0.0.1 (\(name))")
            close(fd)
            throw error
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: address.sin_port)
        let done = self.done
        let thread = DispatchQueue(label: "certreload.demo.\(name)")
        thread.async {
            // OpenSSL writes with write(2): a client that hangs up first would raise SIGPIPE
            // and kill the whole process. Block it on this thread, and consume any pending
            // one before the thread goes back to the pool.
            var pipeOnly = sigset_t()
            sigemptyset(&pipeOnly)
            sigaddset(&pipeOnly, SIGPIPE)
            var previous = sigset_t()
            pthread_sigmask(SIG_BLOCK, &pipeOnly, &previous)
            func dropPendingSIGPIPE() {
                var none = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&pipeOnly, nil, &none) == SIGPIPE {}
            }
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    break
                }
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                handler(client)
                close(client)
                dropPendingSIGPIPE()
            }
            dropPendingSIGPIPE()
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            done.signal()
        }
    }

    /// Stops accepting and waits for the accept loop to end.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        done.wait()
        close(fd)
    }
}

/// The TLS server the demo reloads: it serves the certificate it loaded until told to reload.
public final class DemoTLSServer: Sendable {
    /// `@unchecked Sendable`: the SSL_CTX is immutable once built and OpenSSL allows sharing
    /// one between threads; it is replaced, never changed.
    private final class Context: @unchecked Sendable {
        let pointer: OpaquePointer
        init(pointer: OpaquePointer) { self.pointer = pointer }
        deinit { SSL_CTX_free(pointer) }
    }

    private let chainFile: String
    private let keyFile: String
    private let context: Locked<Context>
    private let listener: Locked<LoopbackListener?> = Locked(nil)
    private let reloads = Atomic<Int>(0)

    /// Loads `chainFile` (leaf first) and `keyFile` now; `reload()` loads them again.
    public init(chainFile: String, keyFile: String) throws {
        self.chainFile = chainFile
        self.keyFile = keyFile
        self.context = Locked(try DemoTLSServer.makeContext(chainFile: chainFile, keyFile: keyFile))
        let listener = try LoopbackListener(name: "tls") { [self] client in self.serve(client) }
        self.listener.withLock { $0 = listener }
    }

    public var port: UInt16 { listener.withLock { $0?.port ?? 0 } }
    public var reloadCount: Int { reloads.load(ordering: .relaxed) }

    /// Reads the certificate files again, as a server's reload does.
    public func reload() throws {
        let fresh = try DemoTLSServer.makeContext(chainFile: chainFile, keyFile: keyFile)
        context.withLock { $0 = fresh }
        reloads.add(1, ordering: .relaxed)
    }

    public func stop() {
        let current = listener.withLock { value -> LoopbackListener? in
            defer { value = nil }
            return value
        }
        current?.stop()
    }

    private func serve(_ client: Int32) {
        let current = context.withLock { $0 }
        guard let ssl = SSL_new(current.pointer) else { return }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, client)
        if SSL_accept(ssl) == 1 {
            _ = SSL_shutdown(ssl)
        }
        _ = drainOpenSSLErrors()
    }

    private static func makeContext(chainFile: String, keyFile: String) throws -> Context {
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw SystemError("SSL_CTX_new", code: EINVAL)
        }
        guard SSL_CTX_use_certificate_chain_file(context, chainFile) == 1,
              SSL_CTX_use_PrivateKey_file(context, keyFile, SSL_FILETYPE_PEM) == 1
        else {
            SSL_CTX_free(context)
            throw CertificateFactory.FactoryError(description: "demo server cannot load \(chainFile): \(drainOpenSSLErrors())")
        }
        return Context(pointer: context)
    }
}

/// A plain HTTP endpoint whose `POST /reload` reloads a `DemoTLSServer`, like a server's admin API.
public final class DemoReloadEndpoint: Sendable {
    private let listener: LoopbackListener

    public init(reloading server: DemoTLSServer) throws {
        listener = try LoopbackListener(name: "reload-endpoint") { client in
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.containsHeaderEnd {
                let n = recv(client, &buffer, buffer.count, 0)
                if n <= 0 { return }
                request += buffer[..<n]
                if request.count > 65536 { return }
            }
            let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let status: String
            let body: String
            if line.hasPrefix("POST /reload ") {
                do {
                    try server.reload()
                    status = "200 OK"
                    body = "{\"reloaded\":true}"
                } catch {
                    status = "500 Internal Server Error"
                    body = "{\"error\":\"\(error)\"}"
                }
            } else {
                status = "404 Not Found"
                body = "{\"error\":\"POST /reload only\"}"
            }
            let response = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = Array(response.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    public var url: String { "http://127.0.0.1:\(listener.port)/reload" }

    public func stop() { listener.stop() }
}

/// An SMTP listener with TLS switched off: it never offers STARTTLS.
public final class DemoSMTPWithoutTLS: Sendable {
    private let listener: LoopbackListener

    public init() throws {
        listener = try LoopbackListener(name: "smtp") { client in
            func say(_ text: String) {
                _ = Array(text.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            say("220 demo.example ESMTP (TLS not enabled on this listener)\r\n")
            var buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                let n = recv(client, &buffer, buffer.count, 0)
                if n <= 0 { return }
                let line = String(decoding: buffer[..<n], as: UTF8.self).uppercased()
                if line.hasPrefix("EHLO") {
                    say("250-demo.example\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n")
                } else if line.hasPrefix("QUIT") {
                    say("221 bye\r\n")
                    return
                } else {
                    say("502 5.5.2 not in the demo\r\n")
                }
            }
        }
    }

    public var port: UInt16 { listener.port }

    public func stop() { listener.stop() }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return true
        }
        return false
    }
}
