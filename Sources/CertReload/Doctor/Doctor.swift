#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// One port doctor probes: `smtp=25`.
public struct DoctorPort: Sendable, Equatable {
    public var scheme: String
    public var port: Int
    /// Named with --port: a closed port is then an error.
    public var explicit: Bool

    public init(scheme: String, port: Int, explicit: Bool) {
        self.scheme = scheme
        self.port = port
        self.explicit = explicit
    }

    /// HOST's standard mail and web ports.
    public static let defaults: [DoctorPort] = [
        ("smtp", 25), ("submission", 587), ("smtps", 465), ("imap", 143), ("imaps", 993), ("pop3", 110),
        ("pop3s", 995), ("https", 443),
    ].map { DoctorPort(scheme: $0.0, port: $0.1, explicit: false) }

    /// Schemes doctor knows (sieve speaks STARTTLS like IMAP's capability list; not probed yet).
    public static let schemes = ["smtp", "submission", "smtps", "submissions", "imap", "imaps", "pop3", "pop3s", "https", "tls"]

    /// Parses `SCHEME=PORT`.
    public init(parsing text: String) throws(UsageError) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw UsageError("--port \(ProbeText.printable(text, limit: 60)) is not SCHEME=PORT", fix: "for example --port smtp=25 --port imaps=993")
        }
        let scheme = parts[0].lowercased()
        guard DoctorPort.schemes.contains(scheme) else {
            throw UsageError("--port: unknown scheme '\(ProbeText.printable(scheme, limit: 30))'", fix: "schemes: \(DoctorPort.schemes.joined(separator: ", "))")
        }
        self.init(scheme: scheme, port: port, explicit: true)
    }

    var startTLS: Bool { ["smtp", "submission", "imap", "pop3"].contains(scheme) }
}

/// A served leaf as the doctor's table shows it.
public struct DoctorLeaf: Sendable {
    public var sha256: String
    public var subject: String
    public var issuer: String
    public var subjectAltNames: [String]
    public var selfSigned: Bool
    public var coversHost: Bool
    /// Covered only through a wildcard name.
    public var wildcardMatch: Bool
    public var notAfter: Int64?
    public var daysLeft: Int?
    public var trusted: Bool
    public var trustDetail: String
    public var protocolVersion: String
    /// Certificates the server sent after the leaf.
    public var chainLength: Int
    public var disk: DiskMatch
}

/// One row of the doctor's table.
public struct DoctorRow: Sendable {
    public enum State: String, Sendable { case open, closed, noAnswer = "no-answer", failed }

    public var port: DoctorPort
    public var url: String
    public var state: State
    /// "STARTTLS", "implicit TLS", "plaintext" (STARTTLS not offered), or "" when closed.
    public var transport: String
    /// For a STARTTLS scheme: whether the server offered it.
    public var startTLSOffered: Bool?
    /// What the server said before TLS (quoted when STARTTLS is not offered).
    public var serverSaid: [String]
    public var failure: TLSProbeFailure?
    public var hint: String?
    public var withSNI: DoctorLeaf?
    public var withoutSNI: DoctorLeaf?
    public var withoutSNIFailure: String?
    public var owner: SocketOwner?
    /// The `openssl s_client` command that shows the same thing.
    public var manual: String
}

/// A check of one lineage as one account, and why doctor ran it.
public struct DoctorCheck: Sendable {
    public var account: Account
    public var lineage: String
    public var reason: String
    /// The ports whose server this check stands for (empty for --user without a served port).
    public var ports: [Int]
    public var report: CheckReport

    public var lineageReport: LineageReport? { report.lineages.first }
    public var accessProblems: [Problem] {
        (lineageReport?.problems ?? []).filter { [.notTraversable, .unreadable].contains($0.code) }
    }
}

/// What one doctor run found.
public struct DoctorReport: Sendable {
    public var host: String
    public var connect: String?
    public var certbotDirectory: String
    public var rows: [DoctorRow]
    public var covering: [(name: String, wildcard: Bool)]
    public var checks: [DoctorCheck]
    public var problems: [Problem]
    /// The ordered plan: what to change, last the command that proves it.
    public var plan: [String]
    /// What server-specific explainers (Stalwart's registry) said beside their problems.
    public var notes: [String]
    public var elapsedSeconds: Double

    public var healthy: Bool { !problems.contains { $0.severity == .error } }
}

/// `certreload doctor HOST`: probes HOST's ports, matches what is served against certbot's
/// archive, finds who serves each port and checks the lineage as that account.
///
/// It changes nothing. Every probe is bounded (connect and total timeouts) and runs on a
/// thread of its own; all ports are probed at once.
public struct Doctor: Sendable {
    public var host: String
    public var connect: String?
    public var ports: [DoctorPort]
    public var lineage: String?
    public var user: Account?
    public var certbot: CertbotDirectory
    public var caFile: String?
    public var configuration: Configuration?
    public var connectTimeout: Double = 2
    public var timeout: Double = 4
    /// The command that proves the fix (doctor again, with the same arguments).
    public var rerun: String

    public init(
        host: String, connect: String? = nil, ports: [DoctorPort] = DoctorPort.defaults, lineage: String? = nil,
        user: Account? = nil, certbot: CertbotDirectory, caFile: String? = nil, configuration: Configuration? = nil,
        rerun: String? = nil
    ) {
        self.host = host
        self.connect = connect
        self.ports = ports
        self.lineage = lineage
        self.user = user
        self.certbot = certbot
        self.caFile = caFile
        self.configuration = configuration
        self.rerun = rerun ?? "certreload doctor \(host)"
    }

    public func run() async -> DoctorReport {
        let started = ProbeDeadline.now()
        let now = Int64(time(nil))
        let certbot = self.certbot
        async let diskScan = Blocking.run { _ in DiskCertificates.scan(certbot) }
        async let socketScan = Blocking.run { (_: CancellationFlag) -> ([ListeningSocket], [UInt64: [Int32]]) in
            let sockets = SocketOwners.listening()
            return (sockets, SocketOwners.holders(of: Set(sockets.map(\.inode))))
        }
        let probes = await withTaskGroup(of: (Int, PortProbe).self) { group in
            for (index, port) in ports.enumerated() {
                group.addTask { (index, await self.probe(port)) }
            }
            var results: [PortProbe?] = Array(repeating: nil, count: ports.count)
            for await (index, probe) in group { results[index] = probe }
            return results.map { $0! }
        }
        let disk = await diskScan
        let (sockets, holders) = await socketScan

        var rows: [DoctorRow] = []
        for probe in probes {
            var row = probe.row
            if row.state == .open || row.state == .failed {
                let dialled = probe.dialledAddress
                row.owner = SocketOwners.owner(port: UInt16(row.port.port), dialled: dialled, sockets: sockets, holders: holders)
            }
            row.withSNI = probe.sni.map { leaf($0, disk: disk, now: now) }
            row.withoutSNI = probe.noSNI.map { leaf($0, disk: disk, now: now) }
            rows.append(row)
        }
        let covering = disk.lineages(covering: host)
        let checks = await runChecks(rows: rows, disk: disk, covering: covering)
        var problems = diagnose(rows: rows, checks: checks, covering: covering, disk: disk)

        // Stalwart targets of the configuration: what Stalwart's registry says (listeners' TLS
        // switches, certificate objects), from Sources/CertReload/Stalwart/. The one place doctor asks a server.
        var notes: [String] = []
        if let configuration {
            for target in configuration.targets {
                guard case .stalwart = target.reload else { continue }
                let lineages = checks.filter { target.lineages.contains($0.lineage) }.compactMap(\.lineageReport)
                let findings = await StalwartView.explain(
                    target: target, lineages: lineages, afterReload: false, logger: Logger(label: "certreload.doctor"),
                    timeout: timeout)
                problems += findings.problems
                notes += findings.lines.map { "target \(target.name): \($0)" }
            }
        }

        let plan = orderedPlan(problems: problems, checks: checks, rows: rows)
        return DoctorReport(
            host: host, connect: connect, certbotDirectory: certbot.path, rows: rows, covering: covering, checks: checks,
            problems: problems, plan: plan, notes: notes, elapsedSeconds: Double(ProbeDeadline.now() - started) / 1_000_000_000)
    }

    // MARK: Probing

    struct PortProbe: Sendable {
        var row: DoctorRow
        var sni: TLSProbeResult?
        var noSNI: TLSProbeResult?
        var dialledAddress: String?
    }

    func tlsProbe(_ endpoint: VerifyEndpoint, sni: Bool) -> TLSProbe {
        TLSProbe(
            endpoint: endpoint, serverName: host, sendServerName: sni, connect: connect, caFile: caFile,
            connectTimeout: connectTimeout, timeout: timeout)
    }

    func makeEndpoint(_ scheme: String, _ port: Int) -> VerifyEndpoint? {
        try? VerifyEndpoint(parsing: "\(scheme)://\(ProbeAddress.authority(host: host, port: UInt16(port)))")
    }

    func probe(_ port: DoctorPort) async -> PortProbe {
        guard let endpoint = makeEndpoint(port.scheme, port.port) else {
            let row = DoctorRow(
                port: port, url: "\(port.scheme)://\(host):\(port.port)", state: .failed, transport: "", startTLSOffered: nil,
                serverSaid: [], failure: TLSProbeFailure(code: .verifyConnectFailed, message: "\(host) is not a host name", transcript: []),
                hint: nil, owner: nil, manual: "")
            return PortProbe(row: row)
        }
        let withSNI = tlsProbe(endpoint, sni: true)
        let withoutSNI = tlsProbe(endpoint, sni: false)
        async let first = Blocking.run { _ in Result { () throws(TLSProbeFailure) in try withSNI.run() } }
        async let second = Blocking.run { _ in Result { () throws(TLSProbeFailure) in try withoutSNI.run() } }
        let (sniOutcome, noSNIOutcome) = await (first, second)

        var row = DoctorRow(
            port: port, url: endpoint.url, state: .open, transport: port.startTLS ? "STARTTLS" : "implicit TLS",
            startTLSOffered: port.startTLS ? true : nil, serverSaid: [], failure: nil, hint: nil, owner: nil,
            manual: withSNI.manualCommand)
        var result = PortProbe(row: row)
        switch sniOutcome {
        case .success(let served):
            result.sni = served
            result.dialledAddress = Doctor.host(of: served.address)
            row.serverSaid = served.transcript
        case .failure(let failure):
            row.failure = failure
            row.serverSaid = failure.transcript
            if failure.code == .verifyConnectFailed {
                row.state = failure.message.contains(errnoDescription(ECONNREFUSED)) ? .closed : .noAnswer
                row.transport = ""
                row.startTLSOffered = nil
            } else if failure.code == .starttlsNotOffered {
                row.transport = "plaintext"
                row.startTLSOffered = false
                if [465, 993, 995].contains(port.port) {
                    row.hint = "port \(port.port) usually speaks TLS at once: probe it as \(Doctor.implicitScheme(port.scheme))=\(port.port)"
                }
            } else {
                row.state = .failed
                if port.startTLS && failure.transcript.isEmpty {
                    // No greeting: perhaps an implicit-TLS port probed as STARTTLS.
                    if let implicit = makeEndpoint(Doctor.implicitScheme(port.scheme), port.port) {
                        let again = tlsProbe(implicit, sni: true)
                        if case .success(let served) = await Blocking.run({ _ in Result { () throws(TLSProbeFailure) in try again.run() } }) {
                            row.state = .open
                            row.transport = "implicit TLS"
                            row.startTLSOffered = nil
                            row.hint = "port \(port.port) speaks TLS at once (implicit TLS), not \(port.scheme.uppercased()) with STARTTLS: name it \(Doctor.implicitScheme(port.scheme))=\(port.port)"
                            row.failure = nil
                            result.sni = served
                            result.dialledAddress = Doctor.host(of: served.address)
                        }
                    }
                } else if !port.startTLS, failure.message.contains("wrong version number") || failure.message.contains("packet length too long") || failure.message.contains("record layer failure") {
                    row.hint = "port \(port.port) answered in plaintext, not with TLS: it is probably a STARTTLS port (name it smtp=, submission=, imap= or pop3=\(port.port))"
                }
            }
        }
        if row.state == .open || row.state == .failed, result.dialledAddress == nil {
            result.dialledAddress = connect.flatMap { DialTarget(connect: $0, defaultPort: UInt16(port.port))?.host }
                ?? (ProbeAddress.isIPAddress(host) ? host : Doctor.resolve(host))
        }
        switch noSNIOutcome {
        case .success(let served): result.noSNI = served
        case .failure(let failure): if row.state == .open && result.sni != nil { row.withoutSNIFailure = failure.message }
        }
        result.row = row
        return result
    }

    static func host(of address: String) -> String {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<close])
        }
        if let colon = address.lastIndex(of: ":") { return String(address[..<colon]) }
        return address
    }

    static func resolve(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let list else { return nil }
        defer { freeaddrinfo(list) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(list.pointee.ai_addr, list.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func implicitScheme(_ scheme: String) -> String {
        switch scheme {
        case "smtp", "submission": return "smtps"
        case "imap": return "imaps"
        case "pop3": return "pop3s"
        default: return scheme
        }
    }

    func leaf(_ served: TLSProbeResult, disk: DiskCertificates, now: Int64) -> DoctorLeaf {
        let certificate = served.leaf
        let covers = certificate.covers(host: host)
        let exact = certificate.subjectAltNames.contains { $0.lowercased() == host.lowercased() }
        return DoctorLeaf(
            sha256: certificate.sha256, subject: certificate.subject, issuer: certificate.issuer,
            subjectAltNames: certificate.subjectAltNames, selfSigned: certificate.isSelfSigned, coversHost: covers,
            wildcardMatch: covers && !exact, notAfter: certificate.notAfter,
            daysLeft: certificate.notAfter.map { Int(($0 - now) / 86_400) }, trusted: served.trust.trusted,
            trustDetail: served.trust.detail, protocolVersion: served.protocolVersion, chainLength: served.chain.count, disk: disk.match(sha256: certificate.sha256))
    }

    // MARK: Checks as the serving account

    func runChecks(rows: [DoctorRow], disk: DiskCertificates, covering: [(name: String, wildcard: Bool)]) async -> [DoctorCheck] {
        var wanted: [(account: Account, lineage: String, reason: String, ports: [Int])] = []
        let fallbackLineage = lineage ?? covering.first?.name
        for row in rows where row.state == .open || row.state == .failed {
            var name = fallbackLineage
            if lineage == nil, let disk = row.withSNI?.disk {
                switch disk {
                case .current(let found, _), .older(let found, _, _, _): name = found
                case .none: break
                }
            }
            guard let name else { continue }
            let account: Account?
            let why: String
            if let user {
                account = user
                why = "--user"
            } else if let owner = row.owner {
                account = try? Account.named(String(owner.uid))
                why = "\(owner.summary) serves port \(row.port.port)"
            } else if let configured = configuration?.targets.first(where: { $0.lineages.contains(name) && $0.user != nil })?.user {
                account = try? Account.named(configured)
                why = "target user in \(configuration?.path ?? "the configuration")"
            } else {
                account = nil
                why = ""
            }
            guard let account else { continue }
            if let index = wanted.firstIndex(where: { $0.account.uid == account.uid && $0.lineage == name }) {
                if !wanted[index].ports.contains(row.port.port) {
                    wanted[index].ports.append(row.port.port)
                    if why != "--user" { wanted[index].reason += "; port \(row.port.port)" }
                }
                continue
            }
            wanted.append((account, name, why, [row.port.port]))
        }
        if wanted.isEmpty, let name = fallbackLineage, let user {
            wanted.append((user, name, "--user", []))
        }
        let certbot = self.certbot
        var checks: [DoctorCheck] = []
        for item in wanted {
            guard let source = try? certbot.lineage(item.lineage) else { continue }
            // Names are judged per port (hostname-not-covered); the check is about the files.
            let hostnames: [String] = []
            let account = item.account
            let report = await Blocking.run { _ in try? Checker(options: CheckOptions(serviceUser: account, hostnames: hostnames)).check([source]) }
            if let report { checks.append(DoctorCheck(account: item.account, lineage: item.lineage, reason: item.reason, ports: item.ports, report: report)) }
        }
        return checks
    }

    // MARK: Causes

    static func isStalwart(_ owner: SocketOwner?) -> Bool {
        guard let process = owner?.process else { return false }
        return process == "stalwart" || process == "stalwart-mail"
    }

    func startTLSFix(_ row: DoctorRow) -> String {
        let port = row.port.port
        switch row.owner?.process {
        case "stalwart"?, "stalwart-mail"?:
            return "Stalwart offers STARTTLS whenever the listener has TLS switched on; its certificate plays no part. "
                + "Turn on TLS for the listener bound to port \(port): in 0.16/1.0 set `useTls` to true on that NetworkListener "
                + "(WebAdmin: Settings → Network → Listeners), in 0.15 `server.listener.<id>.tls.enable = true`; then restart Stalwart and check: \(row.manual)"
        case "master"?, "smtpd"?:
            return "Postfix: set `smtpd_tls_security_level = may` and `smtpd_tls_chain_files = /etc/letsencrypt/live/NAME/privkey.pem, /etc/letsencrypt/live/NAME/fullchain.pem` in main.cf, `postfix reload`, then check: \(row.manual)"
        case "dovecot"?:
            return "Dovecot: set `ssl = yes`, `ssl_cert = </etc/letsencrypt/live/NAME/fullchain.pem`, `ssl_key = </etc/letsencrypt/live/NAME/privkey.pem`, `doveadm reload`, then check: \(row.manual)"
        default:
            return "enable TLS on the listener of port \(port) and give it the lineage's fullchain.pem and privkey.pem, reload the server, then check: \(row.manual)"
        }
    }

    func reloadHint(_ owner: SocketOwner?) -> String {
        switch owner?.process {
        case "stalwart"?, "stalwart-mail"?:
            return "ask Stalwart to reload its certificates (`certreload reload TARGET`; 0.16/1.0: the ReloadTlsCertificates action; 0.15: GET /api/reload/certificate) or restart it"
        case "nginx"?: return "systemctl reload nginx (or nginx -s reload)"
        case "master"?: return "postfix reload"
        case "dovecot"?: return "doveadm reload"
        case "caddy"?: return "caddy reload (POST /load with Cache-Control: must-revalidate)"
        case let name?: return "reload or restart \(name)\(owner?.pid.map { " (pid \($0))" } ?? "")"
        case nil: return "reload the server"
        }
    }

    func diagnose(rows: [DoctorRow], checks: [DoctorCheck], covering: [(name: String, wildcard: Bool)], disk: DiskCertificates) -> [Problem] {
        var problems: [Problem] = []
        for row in rows {
            let url = row.url
            let who = row.owner.map { " (\($0.summary))" } ?? ""
            switch row.state {
            case .closed, .noAnswer:
                if row.port.explicit, let failure = row.failure {
                    problems.append(Problem(
                        .error, .verifyConnectFailed, path: url, message: "\(url): \(failure.message)",
                        fix: "check that the server listens on port \(row.port.port) (ss -ltnp 'sport = :\(row.port.port)')"))
                }
                continue
            case .failed, .open:
                break
            }
            if let failure = row.failure {
                if failure.code == .starttlsNotOffered {
                    problems.append(Problem(
                        .error, .starttlsNotOffered, path: url,
                        message: "\(url)\(who): STARTTLS is not offered; the server said \(ProbeText.quote(failure.transcript))"
                            + (row.hint.map { ". \($0)" } ?? ""),
                        fix: startTLSFix(row)))
                } else {
                    problems.append(Problem(
                        failure.code == .starttlsNotOffered ? .error : .error, failure.code, path: url,
                        message: "\(url)\(who): \(failure.message)" + (row.hint.map { ". \($0)" } ?? ""),
                        fix: row.hint ?? "reproduce by hand: \(row.manual)"))
                }
                continue
            }
            guard let served = row.withSNI else { continue }
            let check = checks.first { $0.ports.contains(row.port.port) }
            switch served.disk {
            case .current:
                break
            case .older(let name, let version, let current, let since):
                problems.append(Problem(
                    .error, .verifyStale, path: url,
                    message: "\(url)\(who) serves version \(version) of \(name); version \(current) is on disk since \(isoTime(since)): the server was not reloaded",
                    fix: "\(reloadHint(row.owner)), then check: \(rerun)"))
            case .none:
                var message = "\(url)\(who) serves a certificate that matches nothing on disk (sha256 \(served.sha256), subject \(served.subject)"
                    + (served.selfSigned ? ", self-signed" : "") + ")"
                if let name = covering.first?.name { message += "; the lineage covering \(host) is \(name)" }
                var fix = "point the listener at the lineage's fullchain.pem and privkey.pem and \(reloadHint(row.owner))"
                if served.selfSigned { message += ". Clients get a self-signed certificate: the server could not load the configured one and fell back to one it generated" }
                if let check, let blocking = check.accessProblems.first {
                    message += ". That is explained by access: \(blocking.message)"
                    fix = "let \(check.account.name) read the lineage (the whole fix above, or `certreload grant \(check.account.name) \(check.lineage)`), restart \(row.owner?.process ?? "the server") so it loads it, then check: \(rerun)"
                }
                problems.append(Problem(.error, .verifyWrongCertificate, path: url, user: check?.account.name, message: message, fix: fix))
            }
            if !served.coversHost {
                problems.append(Problem(
                    .error, .hostnameNotCovered, path: url,
                    message: "\(url): the certificate served for SNI \(host) does not cover \(host) (it names \(served.subjectAltNames.isEmpty ? "no subjectAltName" : served.subjectAltNames.joined(separator: ", ")))",
                    fix: covering.first.map { "serve lineage \($0.name), which covers \(host)\($0.wildcard ? " through its wildcard" : "")" }
                        ?? "add \(host) to a lineage: certbot certonly --expand --cert-name NAME -d \(host) …"))
            }
            if let days = served.daysLeft, days < 0 {
                problems.append(Problem(.error, .expired, path: url, message: "\(url) serves a certificate that expired \(-days) day(s) ago", fix: "\(reloadHint(row.owner)); renew if the lineage itself is expired"))
            }
            // A self-signed leaf that matches nothing on disk is already the wrong certificate.
            if !served.trusted && !(served.selfSigned && served.disk == .none) {
                let showCerts = ProbeText.replacingFirst("-connect", in: row.manual, with: "-showcerts -connect")
                let missingIntermediate = served.chainLength == 0 && served.trustDetail.contains("local issuer")
                problems.append(Problem(
                    .warning, .verifyUntrusted, path: url,
                    message: "\(url) serves a chain the trust store does not trust: \(served.trustDetail) (the server sent \(served.chainLength + 1) certificate(s))",
                    fix: missingIntermediate
                        ? "serve fullchain.pem (with the intermediate), not cert.pem; check: \(showCerts)"
                        : "check the chain the server sends: \(showCerts)"))
            }
            if let other = row.withoutSNI, other.sha256 != served.sha256 {
                problems.append(Problem(
                    .warning, .sniDefaultDiffers, path: url,
                    message: "\(url): clients that send no SNI (many SMTP clients on port 25) get another certificate: sha256 \(other.sha256), subject \(other.subject)"
                        + (other.selfSigned ? ", self-signed" : "") + describeDisk(other.disk),
                    fix: "make the lineage for \(host) the listener's default certificate (the one served without SNI), reload, then check: \(rerun)"))
            }
        }
        // A process started before its account joined the key's group cannot read a renewed key.
        var warnedPIDs: Set<Int32> = []
        for row in rows {
            guard let owner = row.owner, let pid = owner.pid, !warnedPIDs.contains(pid),
                let check = checks.first(where: { $0.account.uid == owner.uid }),
                let key = check.lineageReport?.files[.privkey], let info = key.info,
                check.account.groups.contains(info.st_gid), info.st_gid != check.account.gid,
                let running = SocketOwners.processGroups(pid), !running.contains(info.st_gid)
            else { continue }
            warnedPIDs.insert(pid)
            let group = Account.groupName(info.st_gid)
            problems.append(Problem(
                .warning, .groupNotInProcess, path: key.realPath, user: check.account.name,
                message: "\(owner.summary) started before \(check.account.name) joined group \(group), which reads \(key.realPath): the running process does not have it, so its next reload cannot read the key",
                fix: "restart \(owner.process ?? "the service") (a reload keeps the old groups), then check: \(rerun)"))
        }

        // The checks as each serving account: every problem of the lineage, naming the account.
        for check in checks {
            for problem in check.lineageReport?.problems ?? [] {
                var copy = problem
                if copy.user == nil { copy.user = check.account.name }
                copy.message = "\(check.lineage) as \(check.account.name): " + copy.message
                problems.append(copy)
            }
        }
        return problems
    }

    func describeDisk(_ match: DiskMatch) -> String {
        switch match {
        case .current(let name, let version): return "; it is version \(version) of \(name), the current one"
        case .older(let name, let version, let current, _): return "; it is version \(version) of \(name) (current: \(current))"
        case .none: return "; it matches nothing on disk"
        }
    }

    /// What to change, in order: access first (a server cannot load what it cannot read),
    /// then listener switches, reloads, names; last the command that proves it.
    func orderedPlan(problems: [Problem], checks: [DoctorCheck], rows: [DoctorRow]) -> [String] {
        var steps: [String] = []
        for check in checks {
            guard let plan = check.lineageReport?.fixPlan, !check.accessProblems.isEmpty || !plan.isEmpty else { continue }
            let restart = rows.first { $0.owner?.uid == check.account.uid }?.owner
            steps.append("let \(check.account.name) read \(check.lineage) for good: `certreload grant \(check.account.name) \(check.lineage)` (or paste the whole fix above)"
                + (restart.map { "; then restart \($0.process ?? "the server") so it runs with group \(plan.group) and loads the certificate" } ?? ""))
        }
        let order: [ProblemCode] = [.groupNotInProcess, .starttlsNotOffered, .verifyWrongCertificate, .verifyStale, .hostnameNotCovered, .expired, .sniDefaultDiffers, .verifyUntrusted, .verifyHandshakeFailed, .starttlsRefused, .verifyConnectFailed]
        for code in order {
            for problem in problems where problem.code == code && (problem.path?.contains("://") == true || code == .groupNotInProcess) {
                if code == .verifyWrongCertificate && problem.user != nil && !steps.isEmpty { continue }
                // The last step proves everything: no need to repeat it in each.
                if let fix = problem.fix?.replacingFirstOccurrence(of: ", then check: \(rerun)", with: "") {
                    steps.append("\(problem.path ?? ""): \(fix)")
                }
            }
        }
        steps.append("prove it: \(rerun)")
        return steps
    }
}

extension String {
    func replacingFirstOccurrence(of target: String, with replacement: String) -> String {
        ProbeText.replacingFirst(target, in: self, with: replacement)
    }
}
