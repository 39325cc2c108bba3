#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import COpenSSL
internal import CCertReloadShims.TLS
internal import CCertReloadShims.X509

/// Whether the served chain leads to a trusted root; reported beside the probe, never a reason to fail it.
public struct TrustEvaluation: Sendable, Equatable {
    public var trusted: Bool
    /// "ok", or OpenSSL's reason ("unable to get local issuer certificate").
    public var detail: String
    /// What the chain was checked against: "the system trust store" or "CA file /etc/…".
    public var anchors: String
}

/// What a server served in one TLS handshake.
public struct TLSProbeResult: Sendable {
    public var endpoint: VerifyEndpoint
    /// The address actually dialled, "127.0.0.1:25".
    public var address: String
    /// The SNI name sent, nil when none was.
    public var serverName: String?
    public var leaf: Certificate
    /// The certificates the server sent after the leaf, in its order.
    public var chain: [Certificate]
    /// "TLSv1.3"
    public var protocolVersion: String
    public var cipher: String
    /// Every line the server said before TLS began (empty for implicit TLS).
    public var transcript: [String]
    public var trust: TrustEvaluation
}

/// Why a probe got no certificate, with the stable code of the problem it becomes.
public struct TLSProbeFailure: Error, Sendable, CustomStringConvertible {
    /// One of verify-connect-failed, starttls-not-offered, starttls-refused, verify-handshake-failed.
    public var code: ProblemCode
    public var message: String
    /// What the server said before the failure.
    public var transcript: [String]

    public var description: String { message }
}

/// Connects to a verify endpoint, runs its STARTTLS dialog if it has one, and completes a
/// TLS handshake to see which certificate the server serves.
///
/// It does not fail on an untrusted chain or a name mismatch: it reports what was served.
/// It never sends anything secret, and every wait is bounded by `timeout`.
public struct TLSProbe: Sendable {
    public var endpoint: VerifyEndpoint
    /// The SNI name; defaults to the URL's host. An IP address is never sent as SNI.
    public var serverName: String
    /// Send no SNI at all, as many SMTP clients on port 25 do.
    public var sendServerName: Bool = true
    /// Dial this instead of the URL's host: `10.0.0.5`, `10.0.0.5:2525`, `[::1]:25`.
    public var connect: String?
    /// Trust anchors for the trust evaluation; nil: the system trust store.
    public var caFile: String?
    /// Seconds to wait for the TCP connection.
    public var connectTimeout: Double = 5
    /// Seconds for everything: connect, dialog and handshake.
    public var timeout: Double = 10

    public init(
        endpoint: VerifyEndpoint, serverName: String? = nil, sendServerName: Bool = true, connect: String? = nil,
        caFile: String? = nil, connectTimeout: Double = 5, timeout: Double = 10
    ) {
        self.endpoint = endpoint
        self.serverName = serverName ?? endpoint.host
        self.sendServerName = sendServerName
        self.connect = connect
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// What `openssl s_client` command shows the same thing by hand.
    public var manualCommand: String {
        let target = (connect.flatMap { DialTarget(connect: $0, defaultPort: endpoint.probePort) }
            ?? DialTarget(host: endpoint.host, port: endpoint.probePort)).authority
        var command = "openssl s_client -connect \(target)"
        if let sni = sentServerName { command += " -servername \(sni)" } else { command += " -noservername" }
        if let dialog = endpoint.startTLS { command += " -starttls \(dialog.rawValue)" }
        return command + " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 -subject -issuer"
    }

    var sentServerName: String? {
        guard sendServerName, !serverName.isEmpty, !ProbeAddress.isIPAddress(serverName) else { return nil }
        return serverName
    }

    /// Runs one probe.
    public func run() throws(TLSProbeFailure) -> TLSProbeResult {
        let deadline = ProbeDeadline(secondsFromNow: timeout)
        let target: DialTarget
        if let connect {
            guard let parsed = DialTarget(connect: connect, defaultPort: endpoint.probePort) else {
                throw TLSProbeFailure(
                    code: .verifyConnectFailed,
                    message: "the connect address \"\(ProbeText.printable(connect, limit: 100))\" is not an address or host name (the port is the verify URL's)",
                    transcript: [])
            }
            target = parsed
        } else {
            target = DialTarget(host: endpoint.host, port: endpoint.probePort)
        }

        let socket: ProbeSocket
        switch ProbeSocket.connect(to: target, connectDeadline: ProbeDeadline(secondsFromNow: connectTimeout).capped(by: deadline)) {
        case .success(let connected): socket = connected
        case .failure(let failure):
            let reason = failure.kind == .timedOut ? "no answer within \(ProbeText.seconds(connectTimeout)) (\(failure.detail))" : failure.detail
            throw TLSProbeFailure(
                code: .verifyConnectFailed, message: "cannot connect to \(target.authority): \(reason)", transcript: [])
        }

        var transcript: [String] = []
        if let dialog = endpoint.startTLS {
            var conversation = StartTLSConversation(dialog: dialog, socket: socket, deadline: deadline)
            do {
                try conversation.run()
            } catch {
                throw TLSProbeFailure(code: error.code, message: error.message, transcript: conversation.transcript)
            }
            transcript = conversation.transcript
        }

        let context: TLSClientContext
        do {
            context = try TLSClientContext.shared(caFile: caFile)
        } catch {
            throw TLSProbeFailure(code: .verifyHandshakeFailed, message: error.message, transcript: transcript)
        }
        let connection: TLSClientConnection
        do {
            connection = try TLSClientConnection(context: context, serverName: sentServerName)
        } catch {
            throw TLSProbeFailure(code: .verifyHandshakeFailed, message: error.message, transcript: transcript)
        }
        do {
            try connection.handshake(over: socket, deadline: deadline)
        } catch {
            throw TLSProbeFailure(
                code: .verifyHandshakeFailed,
                message: "TLS handshake with \(socket.peer) failed: \(error.message)", transcript: transcript)
        }
        let certificates = connection.peerCertificates()
        guard let leaf = certificates.first else {
            throw TLSProbeFailure(
                code: .verifyHandshakeFailed, message: "\(socket.peer) completed a TLS handshake without a certificate",
                transcript: transcript)
        }
        let trust = TrustEvaluation(
            trusted: context.loadError == nil && connection.verifyResult == Int(X509_V_OK),
            detail: context.loadError ?? connection.verifyDetail,
            anchors: caFile.map { "CA file \($0)" } ?? "the system trust store")
        let result = TLSProbeResult(
            endpoint: endpoint, address: socket.peer, serverName: sentServerName, leaf: leaf,
            chain: Array(certificates.dropFirst()), protocolVersion: connection.protocolVersion,
            cipher: connection.cipher, transcript: transcript, trust: trust)
        connection.close(over: socket, deadline: ProbeDeadline(secondsFromNow: 0.2).capped(by: deadline))
        return result
    }
}

extension ProbeText {
    static func seconds(_ value: Double) -> String { DurationText.seconds(value) }
}

/// An OpenSSL failure at the TLS boundary, with the drained error queue.
struct TLSFailure: Error {
    var message: String
}

/// An SSL_CTX for probing: any chain is accepted, and its trust is evaluated on the side.
///
/// `@unchecked Sendable`: the SSL_CTX is only read after `init` (SSL_new from any thread is
/// what OpenSSL supports for a context that is no longer changed).
final class TLSClientContext: @unchecked Sendable {
    /// Contexts by trust-anchor file and that file's identity (inode, size, mtime), for the
    /// whole process: OpenSSL 3 takes ~11× longer than 1.1.1 to load a trust store (openssl
    /// issue #16878), so every probe shares one load; a CA file replaced on disk is loaded again.
    private static let cache = Locked<[String: TLSClientContext]>([:])

    static func shared(caFile: String?) throws(TLSFailure) -> TLSClientContext {
        let path = caFile ?? String(cString: X509_get_default_cert_file())
        var info = stat()
        let identity = stat(path, &info) == 0
            ? "\(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)" : "absent"
        let key = "\(caFile == nil ? "system" : "file") \(path) \(identity)"
        if let context = cache.withLock({ $0[key] }) { return context }
        let context = try TLSClientContext(caFile: caFile)
        return cache.withLock { cached in
            if let earlier = cached[key] { return earlier }  // another probe loaded it meanwhile
            if cached.count >= 16 { cached.removeAll() }  // bounded: CA files replaced many times
            cached[key] = context
            return context
        }
    }

    let pointer: OpaquePointer
    /// Why the trust anchors could not be loaded (then nothing counts as trusted).
    let loadError: String?

    init(caFile: String?) throws(TLSFailure) {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw TLSFailure(message: "SSL_CTX_new: \(drainOpenSSLErrors())")
        }
        pointer = context
        // The probe's question is which certificate is served, not whether it is trusted:
        // OpenSSL still verifies the chain and keeps the result for SSL_get_verify_result.
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        if let caFile {
            loadError = SSL_CTX_load_verify_locations(context, caFile, nil) == 1
                ? nil : "cannot load CA file \(caFile): \(drainOpenSSLErrors())"
        } else {
            loadError = SSL_CTX_set_default_verify_paths(context) == 1
                ? nil : "cannot load the system trust store: \(drainOpenSSLErrors())"
        }
    }

    deinit { SSL_CTX_free(pointer) }
}

/// One SSL client over memory BIOs; the bytes travel through `ProbeSocket` so that every
/// wait is bounded and a closed peer never raises SIGPIPE.
final class TLSClientConnection {
    let ssl: OpaquePointer
    /// Owned by `ssl` (SSL_set_bio); network bytes in.
    private let networkIn: OpaquePointer
    /// Owned by `ssl`; bytes for the network.
    private let networkOut: OpaquePointer

    init(context: TLSClientContext, serverName: String?) throws(TLSFailure) {
        guard let ssl = SSL_new(context.pointer) else { throw TLSFailure(message: "SSL_new: \(drainOpenSSLErrors())") }
        guard let input = BIO_new(BIO_s_mem()) else {
            let reason = drainOpenSSLErrors()
            SSL_free(ssl)  // frees nothing else: no BIO is attached yet
            throw TLSFailure(message: "BIO_new: \(reason)")
        }
        guard let output = BIO_new(BIO_s_mem()) else {
            let reason = drainOpenSSLErrors()
            BIO_free(input)  // not attached to ssl yet: it is ours to free
            SSL_free(ssl)
            throw TLSFailure(message: "BIO_new: \(reason)")
        }
        self.ssl = ssl
        SSL_set_bio(ssl, input, output)
        networkIn = input
        networkOut = output
        SSL_set_connect_state(ssl)
        if let serverName, certreload_ssl_set_sni(ssl, serverName) != 1 {
            throw TLSFailure(message: "cannot set SNI \(serverName): \(drainOpenSSLErrors())")
        }
    }

    deinit { SSL_free(ssl) }

    func handshake(over socket: ProbeSocket, deadline: ProbeDeadline) throws(TLSFailure) {
        ERR_clear_error()
        while true {
            let rc = SSL_do_handshake(ssl)
            let error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc)
            let reason = error == SSL_ERROR_SSL ? drainOpenSSLErrors() : nil
            // Send what OpenSSL produced, including an alert explaining a failure.
            let flushed = flush(to: socket, deadline: deadline)
            if rc == 1 {
                if let flushed { throw TLSFailure(message: flushed) }
                return
            }
            switch error {
            case SSL_ERROR_WANT_READ:
                if let flushed { throw TLSFailure(message: flushed) }
                switch socket.receive(deadline: deadline) {
                case .failure(let failure):
                    throw TLSFailure(
                        message: failure.kind == .timedOut
                            ? "the server did not complete the handshake in time" : failure.detail)
                case .success(let bytes):
                    if bytes.isEmpty {
                        throw TLSFailure(message: "the server closed the connection during the handshake")
                    }
                    let written = bytes.withUnsafeBytes { BIO_write(networkIn, $0.baseAddress, Int32($0.count)) }
                    if written != Int32(bytes.count) {
                        throw TLSFailure(message: "BIO_write: \(drainOpenSSLErrors())")
                    }
                }
            case SSL_ERROR_WANT_WRITE:
                continue
            case SSL_ERROR_SSL:
                throw TLSFailure(message: reason ?? "no detail from OpenSSL")
            case SSL_ERROR_ZERO_RETURN:
                throw TLSFailure(message: "the server closed the TLS connection during the handshake")
            default:
                throw TLSFailure(message: "SSL_do_handshake error \(error): \(drainOpenSSLErrors())")
            }
        }
    }

    /// Sends close_notify, best effort.
    func close(over socket: ProbeSocket, deadline: ProbeDeadline) {
        _ = SSL_shutdown(ssl)
        _ = flush(to: socket, deadline: deadline)
        ERR_clear_error()
    }

    /// Moves pending output to the socket; returns why that failed, or nil.
    private func flush(to socket: ProbeSocket, deadline: ProbeDeadline) -> String? {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while certreload_bio_pending(networkOut) > 0 {
            let count = buffer.withUnsafeMutableBytes { BIO_read(networkOut, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { break }
            if case .failure(let failure) = socket.send(Array(buffer.prefix(Int(count))), deadline: deadline) {
                return failure.kind == .timedOut ? "the server did not read the handshake in time" : failure.detail
            }
        }
        return nil
    }

    /// The chain the server sent, leaf first; each certificate outlives this connection.
    func peerCertificates() -> [Certificate] {
        guard let stack = certreload_ssl_peer_chain(ssl) else { return [] }
        var certificates: [Certificate] = []
        for index in 0..<certreload_x509_stack_count(stack) {
            guard let x509 = certreload_x509_stack_at(stack, index), certreload_x509_up_ref(x509) == 1 else { continue }
            certificates.append(Certificate(taking: x509))
        }
        return certificates
    }

    var verifyResult: Int { SSL_get_verify_result(ssl) }

    var verifyDetail: String {
        let code = SSL_get_verify_result(ssl)
        return code == Int(X509_V_OK) ? "ok" : String(cString: X509_verify_cert_error_string(code))
    }

    var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    var cipher: String { certreload_ssl_cipher_name(ssl).map { String(cString: $0) } ?? "unknown" }
}
