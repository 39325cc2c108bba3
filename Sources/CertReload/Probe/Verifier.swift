/// What a verify run found at one endpoint.
public struct VerifyResult: Sendable {
    public var endpoint: VerifyEndpoint
    /// SHA-256 of the leaf cert.pem holds (lower-case hex).
    public var expectedSHA256: String
    /// SHA-256 of the leaf the server served last, nil when no handshake completed.
    public var servedSHA256: String?
    /// Probes made before the result was settled.
    public var attempts: Int
    /// One line for a log or a terminal.
    public var summary: String
    public var problems: [Problem]
    /// The last successful probe (with SNI), for details such as the chain or the transcript.
    public var probe: TLSProbeResult?

    /// The expected certificate is served and nothing worse than a warning was found.
    public var succeeded: Bool { !problems.contains { $0.severity == .error } }
}

/// Checks that a server serves exactly the certificate on disk, retrying while a reload settles.
///
/// It does not reload anything; a stale or wrong certificate becomes a problem with a fix.
public struct Verifier: Sendable {
    public var endpoint: VerifyEndpoint
    /// SHA-256 (hex, any case, colons allowed) of the DER of cert.pem.
    public var expectedSHA256: String
    /// SHA-256 of the certificate deployed before the renewal, to tell "stale" from "wrong".
    public var previousSHA256: String?
    /// The name clients use: sent as SNI and checked against the served certificate.
    public var hostname: String
    /// Dial this address instead of the URL's host (SNI stays `hostname`).
    public var connect: String?
    /// Trust anchors for the trust warning; nil: the system trust store.
    public var caFile: String?
    /// Seconds to keep retrying until the expected certificate is served.
    public var timeout: Double
    /// Seconds one probe may take at most.
    public var attemptTimeout: Double = 5
    /// Also probe without SNI and warn when the default certificate differs.
    public var probeWithoutSNI: Bool
    /// First pause between attempts; it doubles up to `maximumBackoff`.
    public var initialBackoff: Double = 0.2
    public var maximumBackoff: Double = 1

    public init(
        endpoint: VerifyEndpoint, expectedSHA256: String, previousSHA256: String? = nil, hostname: String? = nil,
        connect: String? = nil, caFile: String? = nil, timeout: Double = 10, probeWithoutSNI: Bool = false
    ) {
        self.endpoint = endpoint
        self.expectedSHA256 = expectedSHA256
        self.previousSHA256 = previousSHA256
        self.hostname = hostname ?? endpoint.host
        self.connect = connect
        self.caFile = caFile
        self.timeout = timeout
        self.probeWithoutSNI = probeWithoutSNI
    }

    func probe(sendServerName: Bool, timeout: Double) -> TLSProbe {
        TLSProbe(
            endpoint: endpoint, serverName: hostname, sendServerName: sendServerName, connect: connect, caFile: caFile,
            connectTimeout: min(timeout, 5), timeout: timeout)
    }

    /// Probes until the expected leaf is served or `timeout` runs out, then judges the last answer.
    ///
    /// Each probe is a blocking, poll-bounded (`attemptTimeout`) exchange on a thread of its own,
    /// never on the cooperative pool. Cancellation ends the retries early.
    public func verify() async -> VerifyResult {
        let expected = Verifier.normalized(expectedSHA256)
        let previous = previousSHA256.map(Verifier.normalized)
        let deadline = ProbeDeadline(secondsFromNow: timeout)
        let started = ProbeDeadline.now()
        var backoff = initialBackoff
        var attempts = 0
        var outcome: Result<TLSProbeResult, TLSProbeFailure>
        while true {
            attempts += 1
            // The last attempt still gets a second, so a slow but healthy server can answer.
            let budget = min(attemptTimeout, max(deadline.remainingSeconds, 1))
            let attempt = probe(sendServerName: true, timeout: budget)
            outcome = await Blocking.run { (_) -> Result<TLSProbeResult, TLSProbeFailure> in
                Result { () throws(TLSProbeFailure) -> TLSProbeResult in try attempt.run() }
            }
            if case .success(let served) = outcome, served.leaf.sha256 == expected { break }
            if deadline.remainingSeconds < backoff || Task.isCancelled { break }
            // A bounded pause between attempts while the server reloads; not a synchronisation.
            await Pause.for(.nanoseconds(Int64(backoff * 1_000_000_000)))
            backoff = min(backoff * 2, maximumBackoff)
        }
        let elapsed = Double(ProbeDeadline.now() - started) / 1_000_000_000
        let waited = "\(attempts) attempt\(attempts == 1 ? "" : "s") over \(ProbeText.seconds(elapsed))"
        let manual = probe(sendServerName: true, timeout: attemptTimeout).manualCommand
        let url = endpoint.url

        switch outcome {
        case .failure(let failure):
            let problem = Problem(
                .error, failure.code, path: url, message: "\(url): \(failure.message) (\(waited))",
                fix: fix(for: failure.code, manual: manual))
            return VerifyResult(
                endpoint: endpoint, expectedSHA256: expected, servedSHA256: nil, attempts: attempts,
                summary: "\(url): \(failure.code.rawValue): \(failure.message)", problems: [problem], probe: nil)

        case .success(let served):
            let sha = served.leaf.sha256
            if sha != expected {
                let problem: Problem
                if let previous, sha == previous {
                    problem = Problem(
                        .error, .verifyStale, path: url,
                        message: "\(url) still serves the previous certificate (sha256 \(sha), \(ProbeText.describe(served.leaf))) "
                            + "instead of the renewed one (sha256 \(expected)) after \(waited)",
                        fix: "reload the server so it reads the renewed certificate files, then check what it serves: \(manual)")
                } else {
                    let selfSigned = served.leaf.isSelfSigned
                    problem = Problem(
                        .error, .verifyWrongCertificate, path: url,
                        message: "\(url) serves a certificate that is not cert.pem on disk: sha256 \(sha), "
                            + "\(ProbeText.describe(served.leaf)); expected sha256 \(expected) (\(waited))"
                            + (selfSigned
                                ? ". Clients get a self-signed certificate: the server probably could not load the configured certificate or key and fell back to one it generated"
                                : ""),
                        fix: "point the listener at the lineage's fullchain.pem and privkey.pem, make sure the service "
                            + "user can read them (certreload check), reload the server, then check: \(manual)")
                }
                return VerifyResult(
                    endpoint: endpoint, expectedSHA256: expected, servedSHA256: sha, attempts: attempts,
                    summary: "\(url): \(problem.code.rawValue): serves sha256 \(sha), expected \(expected)",
                    problems: [problem], probe: served)
            }

            var problems: [Problem] = []
            if !served.leaf.covers(host: hostname) {
                let names = served.leaf.subjectAltNames
                problems.append(
                    Problem(
                        .error, .verifyHostnameMismatch, path: url,
                        message: "\(url) serves the expected certificate, but it does not cover \(hostname) "
                            + "(it names \(names.isEmpty ? "no subjectAltName" : names.joined(separator: ", ")))",
                        fix: "add the name to the lineage: certbot certonly --cert-name <lineage> --expand "
                            + (names.map { "-d \($0)" } + ["-d \(hostname)"]).joined(separator: " ")
                            + "; or verify a URL whose host the certificate names"))
            }
            if !served.trust.trusted {
                let missingIntermediate = served.chain.isEmpty && served.trust.detail.contains("local issuer")
                problems.append(
                    Problem(
                        .warning, .verifyUntrusted, path: url,
                        message: "\(url) serves a chain that \(served.trust.anchors) does not trust: \(served.trust.detail) "
                            + "(the server sent \(served.chain.count + 1) certificate(s): "
                            + ([served.leaf] + served.chain).map(\.subject).joined(separator: " <- ") + ")",
                        fix: missingIntermediate
                            ? "serve fullchain.pem, not cert.pem, so clients also get the intermediate certificate; then check: \(ProbeText.replacingFirst("-connect", in: manual, with: "-showcerts -connect"))"
                            : "check the chain the server sends: \(ProbeText.replacingFirst("-connect", in: manual, with: "-showcerts -connect"))"))
            }
            if probeWithoutSNI, let problem = await defaultCertificateProblem(expected: expected) {
                problems.append(problem)
            }
            let trust = served.trust.trusted ? "trusted" : "untrusted: \(served.trust.detail)"
            let summary = problems.contains { $0.severity == .error }
                ? "\(url): \(problems[0].code.rawValue): serves the expected certificate sha256 \(sha) but it does not cover \(hostname)"
                : "\(url) serves the expected certificate sha256 \(sha) (\(served.protocolVersion), \(trust))"
                    + (problems.isEmpty ? "" : "; warnings: " + problems.map(\.code.rawValue).joined(separator: ", "))
            return VerifyResult(
                endpoint: endpoint, expectedSHA256: expected, servedSHA256: sha, attempts: attempts, summary: summary,
                problems: problems, probe: served)
        }
    }

    /// What clients without SNI get, when that is not the expected certificate.
    private func defaultCertificateProblem(expected: String) async -> Problem? {
        let probe = probe(sendServerName: false, timeout: attemptTimeout)
        let url = endpoint.url
        do {
            let served = try await Blocking.run { (_) throws(TLSProbeFailure) -> TLSProbeResult in try probe.run() }
            guard served.leaf.sha256 != expected else { return nil }
            return Problem(
                .warning, .sniDefaultDiffers, path: url,
                message: "\(url): clients that send no SNI (many SMTP clients on port 25) get another certificate: "
                    + "sha256 \(served.leaf.sha256), \(ProbeText.describe(served.leaf))"
                    + (served.leaf.isSelfSigned ? "; they get a self-signed certificate" : ""),
                fix: "make this lineage the listener's default certificate (the one served without SNI), "
                    + "reload, then check: \(probe.manualCommand)")
        } catch {
            return Problem(
                .warning, .sniDefaultDiffers, path: url,
                message: "\(url): clients that send no SNI get no certificate: \(error.message)",
                fix: "give the listener a default certificate (the one served without SNI), then check: \(probe.manualCommand)")
        }
    }

    private func fix(for code: ProblemCode, manual: String) -> String {
        switch code {
        case .verifyConnectFailed:
            return "check that the server is running and listening on port \(endpoint.port) "
                + "(ss -ltnp 'sport = :\(endpoint.port)') and that no firewall is in the way; "
                + "set connect = \"ADDRESS\" in the target if \(endpoint.host) resolves elsewhere"
        case .starttlsNotOffered:
            let implicitHint = [465, 993, 995].contains(endpoint.port)
                ? "; port \(endpoint.port) usually speaks TLS at once: use \(implicitScheme)://\(endpoint.authority)" : ""
            return "enable TLS on port \(endpoint.port), check the server can read its certificate and key "
                + "(certreload check), reload, then check: \(manual)"
                + implicitHint
        case .starttlsRefused:
            return "read the server's log for why it refused STARTTLS (often a certificate it could not load), then check: \(manual)"
        case .verifyHandshakeFailed where endpoint.startTLS == nil:
            return "if this port speaks plaintext first, use the STARTTLS scheme (smtp://, submission://, imap://, pop3://); "
                + "reproduce by hand: \(manual)"
        default:
            return "reproduce by hand and compare: \(manual)"
        }
    }

    private var implicitScheme: String {
        switch endpoint.startTLS {
        case .smtp?: return "smtps"
        case .imap?: return "imaps"
        case .pop3?: return "pop3s"
        case nil: return endpoint.scheme
        }
    }

    /// Lower-case hex without colons or spaces.
    static func normalized(_ sha256: String) -> String {
        String(sha256.lowercased().filter { $0 != ":" && $0 != " " })
    }
}

extension ProbeText {
    /// "subject CN=a, issuer CN=b, self-signed, valid until …" for messages.
    static func describe(_ certificate: Certificate) -> String {
        var parts = [
            "subject \(ProbeText.printable(certificate.subject, limit: 200))", "issuer \(ProbeText.printable(certificate.issuer, limit: 200))",
        ]
        if certificate.isSelfSigned { parts.append("self-signed") }
        if let notAfter = certificate.notAfter { parts.append("valid until \(isoTime(notAfter))") }
        return parts.joined(separator: ", ")
    }
}

extension ProbeText {
    /// Subject equals issuer and its own key verifies the signature.
    ///
    /// Unlike `Certificate.isSelfSigned` (X509_check_issued), this does not require the
    /// keyCertSign key usage, which the self-signed leaves servers generate as a fallback lack.
    static func replacingFirst(_ target: String, in text: String, with replacement: String) -> String {
        guard let range = text.firstRange(of: target) else { return text }
        return String(text[..<range.lowerBound]) + replacement + String(text[range.upperBound...])
    }
}
