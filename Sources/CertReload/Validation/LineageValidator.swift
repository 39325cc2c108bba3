/// What a person needs to know about a lineage's leaf certificate.
public struct CertificateSummary: Sendable, Equatable {
    public var subject: String
    public var issuer: String
    public var subjectAltNames: [String]
    public var notBefore: Int64
    public var notAfter: Int64
    public var sha256: String
    public var keyAlgorithm: String?
    public var selfSigned: Bool
    /// Which of the names the check was asked about (its `hostnames`, and the hosts of the
    /// target's verify URLs) this certificate covers, lower-cased — decided by OpenSSL's
    /// matcher (`Certificate.covers(host:)`), the only wildcard matcher in certreload.
    public var coveredHosts: Set<String> = []

    /// Whether the certificate covers `host`, one of the names the check was asked about.
    public func covers(_ host: String) -> Bool { coveredHosts.contains(host.lowercased()) }

    init(_ certificate: Certificate, key: PrivateKey?) {
        subject = certificate.subject
        issuer = certificate.issuer
        subjectAltNames = certificate.subjectAltNames
        notBefore = certificate.notBefore ?? 0
        notAfter = certificate.notAfter ?? 0
        sha256 = certificate.sha256
        keyAlgorithm = key.map { $0.isRSA ? "RSA \($0.bits)" : $0.algorithm }
        selfSigned = certificate.isSelfSigned
    }
}

/// Validates a lineage's parsed files: PEM, chain order and signatures, key match, dates,
/// hostnames and key hygiene. It does not check trust in a root store.
public struct LineageValidator: Sendable {
    public var hostnames: [String]
    /// Names to test coverage of without requiring it (the hosts of verify URLs).
    public var probeHosts: [String]
    public var warnDays: Int
    public var now: Int64

    public init(hostnames: [String] = [], probeHosts: [String] = [], warnDays: Int = 14, now: Int64) {
        self.hostnames = hostnames
        self.probeHosts = probeHosts
        self.warnDays = warnDays
        self.now = now
    }

    public func validate(_ files: [LineageFile: ResolvedFile], isCertbot: Bool) -> (CertificateSummary?, [Problem]) {
        var problems: [Problem] = []

        var blocks = ParsedBlocks()
        func parsed(_ kind: LineageFile) -> [Certificate]? {
            guard let file = files[kind], file.problem == nil, let bytes = file.contents else { return nil }
            let (certificates, error) = Certificate.parseAll(pem: bytes, leafFirst: kind != .chain, parsed: &blocks)
            if let error {
                problems.append(Problem(
                    .error, .badPEM, path: file.realPath,
                    message: "\(file.realPath) (\(kind.linkName)): \(error)",
                    fix: "compare with `openssl x509 -noout -text -in \(file.realPath)`; re-run certbot for this lineage if the file is damaged"))
                return certificates.isEmpty ? nil : certificates
            }
            return certificates
        }

        let certFile = parsed(.cert)
        var chain = parsed(.chain)
        let fullchain = parsed(.fullchain)
        var leafList = certFile
        if isCertbot, let certificates = certFile, certificates.count > 1, let file = files[.cert] {
            // certbot writes exactly one certificate to cert.pem; more means it was edited.
            problems.append(Problem(
                .error, .badPEM, path: file.realPath,
                message: "\(file.realPath) (cert.pem) holds \(certificates.count) certificates; certbot writes only the server's own there (the chain goes to chain.pem)",
                fix: "re-run certbot for this lineage (`certbot renew --force-renewal --cert-name NAME`), or restore \(file.realPath) to the leaf alone"))
        }
        if !isCertbot, let certificates = certFile, certificates.count > 1, files[.chain] == nil {
            leafList = [certificates[0]]
            chain = Array(certificates.dropFirst())
        }

        var key: PrivateKey?
        if let file = files[.privkey], file.problem == nil, let bytes = file.contents {
            switch PrivateKey.parse(pem: bytes) {
            case .success(let parsedKey):
                key = parsedKey
            case .failure(.encrypted):
                problems.append(Problem(
                    .error, .encryptedKey, path: file.realPath,
                    message: "\(file.realPath) is an encrypted private key; servers reloading unattended cannot use it",
                    fix: "openssl pkey -in \(file.realPath) -out \(file.realPath).new && mv \(file.realPath).new \(file.realPath)   # asks for the passphrase once"))
            case .failure(.notAKey):
                problems.append(Problem(
                    .error, .badPEM, path: file.realPath,
                    message: "\(file.realPath) holds no PEM private key",
                    fix: "point \(file.path) at the key certbot wrote for this certificate"))
            case .failure(.unsupported(let detail)):
                problems.append(Problem(
                    .error, .badPEM, path: file.realPath,
                    message: "\(file.realPath): the private key cannot be parsed or its type is unsupported (\(detail))",
                    fix: "check it with `openssl pkey -noout -in \(file.realPath)`"))
            }
            if (file.info?.st_mode ?? 0) & 0o004 != 0 {
                problems.append(Problem(
                    .warning, .keyWorldReadable, path: file.realPath,
                    message: "\(file.realPath) is readable by every account on this machine (mode \(String(Int(file.info!.st_mode & 0o777), radix: 8)))",
                    fix: "chmod o-r \(file.realPath)   # give the server access through its group instead"))
            }
        }

        guard let leaf = leafList?.first else {
            return (nil, problems)
        }
        let certPath = files[.cert]?.realPath ?? ""

        if leaf.isCA {
            problems.append(Problem(
                .error, .badPEM, path: certPath,
                message: "the first certificate in \(certPath) is a CA certificate, not the server's leaf (subject \(leaf.subject))",
                fix: "put the server's own certificate first"))
        }

        if let key {
            if !leaf.matches(key) {
                let keyPath = files[.privkey]?.realPath ?? ""
                problems.append(Problem(
                    .error, .keyMismatch, path: keyPath,
                    message: "the private key \(keyPath) (\(key.algorithm)) does not belong to the certificate \(certPath) (subject \(leaf.subject)); a server given this pair fails its handshakes or falls back to another certificate",
                    fix: isCertbot
                        ? "let certbot finish, or point privkey.pem at the key of the same version as cert.pem"
                        : "use the key the certificate was issued for"))
            }
            if key.isRSA && key.bits < 2048 {
                problems.append(Problem(
                    .warning, .weakKey, path: files[.privkey]?.realPath,
                    message: "the RSA key has \(key.bits) bits; 2048 is the minimum clients accept",
                    fix: "certbot renew --force-renewal --cert-name NAME --key-type ecdsa   # or --rsa-key-size 3072"))
            }
        }

        if let chain {
            if let fullchain, let fullPath = files[.fullchain]?.realPath {
                let expected = [leaf] + chain
                if fullchain.map(\.der) != expected.map(\.der) {
                    problems.append(Problem(
                        .error, .chainMismatch, path: fullPath,
                        message: "\(fullPath) is not cert.pem followed by chain.pem: "
                            + (fullchain.first?.der != leaf.der
                                ? "it starts with another certificate (\(fullchain.first?.subject ?? "none"), sha256 \(fullchain.first?.sha256.prefix(16) ?? "")…) than cert.pem (sha256 \(leaf.sha256.prefix(16))…)"
                                : "its \(fullchain.count - 1) chain certificate(s) differ from the \(chain.count) in chain.pem"),
                        fix: "cat \(certPath) \(files[.chain]?.realPath ?? "chain.pem") > \(fullPath)   # or let certbot rewrite the lineage"))
                }
            }
            let sequence = [leaf] + chain
            for index in 0..<(sequence.count - 1) {
                let child = sequence[index]
                let parent = sequence[index + 1]
                if !child.issuerNameMatches(parent) || !child.signed(by: parent) {
                    let where_ = index == 0 ? "the certificate" : "chain certificate \(index)"
                    problems.append(Problem(
                        .error, .chainInvalid, path: files[.chain]?.realPath,
                        message: "\(where_) (subject \(child.subject), issuer \(child.issuer)) is not signed by the next one in the chain (subject \(parent.subject))",
                        fix: "chain.pem must list the issuer of cert.pem first, then its issuer; take it from the CA again or re-run certbot"))
                    break
                }
            }
            for (index, certificate) in chain.enumerated() {
                if let notAfter = certificate.notAfter, notAfter < now {
                    problems.append(Problem(
                        .error, .expired, path: files[.chain]?.realPath,
                        message: "chain certificate \(index + 1) (\(certificate.subject)) expired on \(isoTime(notAfter))",
                        fix: "renew the lineage to get the CA's current chain: certbot renew --force-renewal"))
                }
            }
        } else if isCertbot, files[.chain]?.problem == nil, files[.chain] != nil {
            // parsed() already reported the bad PEM.
        }

        if let notBefore = leaf.notBefore, notBefore > now {
            problems.append(Problem(
                .error, .notYetValid, path: certPath,
                message: "\(certPath) is not valid before \(isoTime(notBefore)); clients reject it until then (check this machine's clock)",
                fix: "check the clock with `timedatectl`; keep serving the previous certificate"))
        }
        if let notAfter = leaf.notAfter {
            if notAfter <= now {
                problems.append(Problem(
                    .error, .expired, path: certPath,
                    message: "\(certPath) expired on \(isoTime(notAfter))",
                    fix: "certbot renew --cert-name \(Paths.base(of: Paths.directory(of: files[.cert]?.path ?? "")))   # then check the renewal timer: systemctl list-timers certbot"))
            } else if notAfter - now < Int64(warnDays) * 86_400 {
                let days = (notAfter - now) / 86_400
                problems.append(Problem(
                    .warning, .expiringSoon, path: certPath,
                    message: "\(certPath) expires on \(isoTime(notAfter)), in \(days) day(s) (warning threshold \(warnDays) days); certbot normally renews 30 days ahead",
                    fix: "certbot renew --dry-run   # shows why renewal is not happening"))
            }
        }

        let names = leaf.subjectAltNames
        for host in hostnames where !leaf.covers(host: host) {
            problems.append(Problem(
                .error, .hostnameNotCovered, path: certPath,
                message: "\(host) is not covered by \(certPath) (names: \(names.isEmpty ? "none" : names.joined(separator: ", "))); a wildcard covers exactly one label: *.example.com covers mail.example.com, not example.com nor a.b.example.com",
                fix: "certbot certonly --cert-name NAME --expand -d \((names + [host]).joined(separator: " -d "))"))
        }

        var summary = CertificateSummary(leaf, key: key)
        for host in hostnames + probeHosts where leaf.covers(host: host) { summary.coveredHosts.insert(host.lowercased()) }
        return (summary, problems)
    }
}
