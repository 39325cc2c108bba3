public import Logging

/// What certreload says about a Stalwart target from Stalwart's own registry.
public struct StalwartFindings: Sendable {
    public var problems: [Problem] = []
    /// Lines for a person: which certificate object uses which lineage, which listener is
    /// behind which verify URL.
    public var lines: [String] = []

    public init(problems: [Problem] = [], lines: [String] = []) {
        self.problems = problems
        self.lines = lines
    }
}

/// Stalwart's view of what it serves, for `check --config`, `verify`, `deploy` and `doctor`:
/// one call per target.
///
/// It is an explanation, never a precondition: when the registry cannot be read it says so in
/// one warning (or one line, for 0.15, which has none) and the job goes on.
public enum StalwartView {
    /// Reads the registry of a Stalwart target and explains it against the target's lineages.
    /// Returns nothing for a target that is not Stalwart. `afterReload`: the target was just
    /// reloaded, so stored metadata that differs from the disk is an error.
    public static func explain(
        target: TargetConfiguration, lineages: [LineageReport], afterReload: Bool, logger: Logger,
        credentialsDirectory: String? = nil, timeout: Double = 10
    ) async -> StalwartFindings {
        guard case .stalwart(let url, let api, let token, let username, let password) = target.reload else { return StalwartFindings() }
        if api == .rest {
            return StalwartFindings(lines: ["Stalwart 0.15 (api = \"rest\") has no certificate registry to read"])
        }
        let endpoint: HTTPEndpoint
        let credentials: StalwartCredentials?
        do {
            endpoint = try HTTPEndpoint(url)
            credentials = try StalwartCredentials.load(
                token: token, username: username, password: password, credentialsDirectory: credentialsDirectory)
        } catch {
            return StalwartFindings(problems: [unreadable(target, "its credentials could not be used: \(error.message)")])
        }
        if case .legacyAPIKey? = credentials {
            return StalwartFindings(lines: ["the token is a Stalwart 0.15 API key: 0.15 has no certificate registry to read"])
        }
        let trust = target.endpointTrust
        let result = await Blocking.run { (flag) -> Result<StalwartRegistry, StalwartRegistry.Unavailable> in
            StalwartRegistry.read(endpoint: endpoint, credentials: credentials, trust: trust, timeout: timeout, cancellation: flag)
        }
        switch result {
        case .failure(.noRegistry(let why)):
            return StalwartFindings(lines: ["Stalwart at \(endpoint) has no certificate registry to read (\(why)): 0.15 keeps certificates in its configuration"])
        case .failure(.failed(let error)):
            logger.warning("could not read Stalwart's registry: \(error.message)", metadata: ["certreload_code": "\(ProblemCode.stalwartRegistryUnreadable.rawValue)"])
            let refused = error.code == .reloadUnauthorized && error.message.contains("answered 401")
            return StalwartFindings(problems: [unreadable(
                target, error.message,
                fix: refused ? "check the credentials (token-file, or username and password-file): Stalwart refused them" : nil)])
        case .success(let registry):
            return StalwartExplainer(target: target, lineages: lineages, afterReload: afterReload).explain(registry)
        }
    }

    static func unreadable(_ target: TargetConfiguration, _ cause: String, fix: String? = nil) -> Problem {
        Problem(
            .warning, .stalwartRegistryUnreadable, path: target.name,
            message: "certreload could not read Stalwart's certificate registry for \(target.name) (\(cause)); "
                + "it goes on without explaining what Stalwart is configured to serve",
            fix: fix ?? "give the API key the permissions \(StalwartRegistry.permissions.joined(separator: ", ")) (reading only)")
    }

}

/// The pure part of `StalwartView`: a registry and a target's lineages in, findings out.
public struct StalwartExplainer: Sendable {
    public var target: TargetConfiguration
    public var lineages: [LineageReport]
    public var afterReload: Bool

    public init(target: TargetConfiguration, lineages: [LineageReport], afterReload: Bool) {
        self.target = target
        self.lineages = lineages
        self.afterReload = afterReload
    }

    public func explain(_ registry: StalwartRegistry) -> StalwartFindings {
        var findings = StalwartFindings()
        if !registry.refused.isEmpty {
            findings.problems.append(StalwartView.unreadable(
                target, "Stalwart refused to show \(registry.refused.map(Self.objectName).joined(separator: ", ")) (forbidden)"))
        }
        if let certificates = registry.certificates {
            explainCertificates(certificates, into: &findings)
            if let setting = registry.defaultCertificateID {
                explainDefault(setting, certificates, into: &findings)
            }
        }
        if let listeners = registry.listeners {
            explainListeners(listeners, into: &findings)
        }
        return findings
    }

    static func objectName(_ permission: String) -> String {
        switch permission {
        case "sysCertificateGet": "its certificates (needs sysCertificateGet)"
        case "sysNetworkListenerGet": "its listeners (needs sysNetworkListenerGet)"
        default: "its default certificate (needs sysSystemSettingsGet)"
        }
    }

    /// The names the target is about: its hostnames, else its lineages' certificate names.
    var names: [String] {
        if !target.hostnames.isEmpty { return target.hostnames }
        return lineages.flatMap { $0.certificate?.subjectAltNames ?? [] }
    }

    /// The lineage whose live/ directory (or explicit files) holds `path`; `pinned` when it is
    /// a file of the lineage's archive/ directory instead (one version, which renewals leave behind).
    func lineage(holding path: String) -> (lineage: LineageReport, pinned: Bool)? {
        let file = Paths.normalize(path)
        let directory = Paths.directory(of: file)
        let real = Paths.realDirectory(directory)
        for lineage in lineages {
            if lineage.source.files.values.contains(where: { Paths.normalize($0) == file }) { return (lineage, false) }
            guard lineage.source.isCertbot else { continue }
            let live = Paths.normalize(lineage.path)
            if directory == live || (real != nil && real == Paths.realDirectory(live)) { return (lineage, false) }
            // certbot's layout: CONFIG/live/NAME ↔ CONFIG/archive/NAME.
            let archive = Paths.join(Paths.directory(of: Paths.directory(of: live)), "archive/" + lineage.name)
            if directory == archive || (real != nil && real == Paths.realDirectory(archive)) { return (lineage, true) }
        }
        return nil
    }

    func explainCertificates(_ certificates: [StalwartRegistry.CertificateObject], into findings: inout StalwartFindings) {
        var used: Set<String> = []
        for object in certificates {
            let names = object.names.joined(separator: ", ")
            let until = object.notValidAfter.map { ", valid until \($0)" } ?? ""
            switch object.certificate {
            case .file(let path):
                guard let (lineage, pinned) = lineage(holding: path) else {
                    findings.lines.append("Stalwart certificate object \(object.id) reads \(path) (\(names)\(until)): not one of this target's lineages")
                    continue
                }
                if pinned {
                    findings.lines.append(
                        "Stalwart certificate object \(object.id) reads \(path), one fixed version in lineage \(lineage.name)'s archive/: "
                            + "renewals never reach it (point it at \(Paths.join(lineage.path, "fullchain.pem")))")
                    continue
                }
                used.insert(lineage.path)
                findings.lines.append("Stalwart certificate object \(object.id) reads \(path) → lineage \(lineage.name) (\(names)\(until))")
                explainMetadata(object, path: path, lineage: lineage, into: &findings)
            case .text:
                let overlapping = object.names.contains { name in self.names.contains { Self.covers(name, $0) || Self.covers($0, name) } }
                let advice = lineages.first.map { lineage in
                    "re-create it as File: x:Certificate/set with certificate {\"@type\":\"File\",\"filePath\":\"\(Paths.join(lineage.path, "fullchain.pem"))\"} "
                        + "and privateKey {\"@type\":\"File\",\"filePath\":\"\(Paths.join(lineage.path, "privkey.pem"))\"}, then destroy \(object.id)"
                } ?? "re-create it with certificate and privateKey as File paths under certbot's live/ directory"
                if overlapping {
                    findings.problems.append(Problem(
                        .warning, .stalwartCertificateInline, path: target.name,
                        message: "Stalwart certificate object \(object.id) (\(names)\(until)) holds its certificate inline (Text), "
                            + "as Stalwart's own 0.15→0.16 migration makes of file certificates: it will never follow renewals on disk",
                        fix: advice))
                } else {
                    findings.lines.append("Stalwart certificate object \(object.id) holds an inline certificate (\(names)\(until)), for none of this target's names")
                }
            case .environment(let variable):
                findings.lines.append("Stalwart certificate object \(object.id) reads the environment variable \(variable) (\(names)\(until)): renewals on disk do not reach it")
            case .other(let type):
                findings.lines.append("Stalwart certificate object \(object.id) has a certificate of type \(type)")
            }
        }
        for lineage in lineages where !used.contains(lineage.path) {
            findings.problems.append(Problem(
                .warning, .stalwartLineageUnused, path: lineage.path,
                message: "no Stalwart certificate object reads lineage \(lineage.name): reloading Stalwart re-reads only the files "
                    + "its certificate objects name, so this lineage's renewals never reach it",
                fix: "create one: x:Certificate/set create with certificate {\"@type\":\"File\",\"filePath\":\"\(Paths.join(lineage.path, "fullchain.pem"))\"} "
                    + "and privateKey {\"@type\":\"File\",\"filePath\":\"\(Paths.join(lineage.path, "privkey.pem"))\"}"))
        }
    }

    /// crates/common/src/config/server/tls.rs: 0.16.0–0.16.10 keep the notValidAfter stored at
    /// creation and delete the object once it passes; 0.16.11 re-reads file-backed certificates.
    func explainMetadata(_ object: StalwartRegistry.CertificateObject, path: String, lineage: LineageReport, into findings: inout StalwartFindings) {
        guard let disk = lineage.certificate?.notAfter, let stored = object.notValidAfterSeconds, stored != disk else { return }
        let storedText = object.notValidAfter ?? StalwartRegistry.formatUTC(stored)
        let diskText = StalwartRegistry.formatUTC(disk)
        if afterReload {
            findings.problems.append(Problem(
                .error, .stalwartMetadataStale, path: path,
                message: "after the reload Stalwart's certificate object \(object.id) still records notValidAfter \(storedText), "
                    + "but \(path) is valid until \(diskText): this Stalwart did not re-read the file's details (0.16.0 to 0.16.10 never do) "
                    + "and will delete the certificate object when \(storedText) passes, although the file on disk is newer",
                fix: "upgrade Stalwart to 0.16.11 or later; until then destroy and re-create certificate object \(object.id) after each renewal "
                    + "(x:Certificate/set) so that it stores the new dates"))
        } else {
            findings.lines.append(
                "Stalwart's certificate object \(object.id) records notValidAfter \(storedText); \(path) is valid until \(diskText) "
                    + "(a reload refreshes it on 0.16.11 and later, not on 0.16.0 to 0.16.10)")
        }
    }

    /// crates/common/src/network/tls.rs resolve_certificate: no SNI → the default ("*"), else
    /// the only certificate, else an arbitrary one, else a generated self-signed one.
    func explainDefault(_ setting: String?, _ certificates: [StalwartRegistry.CertificateObject], into findings: inout StalwartFindings) {
        let fix = "set one: x:SystemSettings/set update singleton {\"defaultCertificateId\":\"ID\"} with the ID of the certificate object "
            + "that covers \(names.first ?? "your mail host name")"
        guard let id = setting, let object = certificates.first(where: { $0.id == id }) else {
            let reason = setting.map { "defaultCertificateId names \($0), which is no certificate object (deleted?)" }
                ?? "Stalwart has no defaultCertificateId"
            if certificates.count > 1 {
                findings.problems.append(Problem(
                    .warning, .sniDefaultDiffers, path: target.name,
                    message: "\(reason): clients that send no SNI (many SMTP clients on port 25) get an arbitrary one of its \(certificates.count) certificates",
                    fix: fix))
            } else if let only = certificates.first {
                findings.lines.append("\(reason): clients without SNI get its only certificate, object \(only.id)")
            } else {
                findings.lines.append("\(reason), and no certificate object: clients get a generated self-signed certificate")
            }
            return
        }
        let uncovered = names.filter { name in !object.names.contains { Self.covers($0, name) } }
        if uncovered.isEmpty {
            findings.lines.append("Stalwart's default certificate (for clients without SNI) is object \(id), covering \(object.names.joined(separator: ", "))")
        } else {
            findings.problems.append(Problem(
                .warning, .sniDefaultDiffers, path: target.name,
                message: "Stalwart's default certificate, object \(id) (\(object.names.joined(separator: ", "))), does not cover "
                    + "\(uncovered.joined(separator: ", ")): clients that send no SNI (many SMTP clients on port 25) get it",
                fix: fix))
        }
    }

    static let implicitSchemes: Set<String> = ["smtps", "submissions", "imaps", "pop3s", "https", "tls"]

    func explainListeners(_ listeners: [StalwartRegistry.Listener], into findings: inout StalwartFindings) {
        for endpoint in target.verify {
            let url = endpoint.url
            let behind = listeners.filter { $0.ports.contains(endpoint.port) }
            guard !behind.isEmpty else {
                findings.lines.append("no Stalwart listener binds port \(endpoint.port) (\(url))")
                continue
            }
            for listener in behind {
                let described = "Stalwart listener \(listener.name) (\(listener.protocol), bind \(listener.bind.joined(separator: " ")))"
                if !listener.useTLS {
                    findings.problems.append(Problem(
                        .error, .stalwartListenerTLSOff, path: url,
                        message: "\(described) behind \(url) has useTls false: Stalwart offers neither STARTTLS nor TLS there, "
                            + "whatever its certificates (this is why verify reports starttls-not-offered or a failed handshake)",
                        fix: "x:NetworkListener/set update \(listener.id) {\"useTls\":true}"))
                    continue
                }
                let probesImplicit = Self.implicitSchemes.contains(endpoint.scheme)
                if probesImplicit != listener.tlsImplicit {
                    let mode = listener.tlsImplicit ? "implicit TLS (tlsImplicit true)" : "STARTTLS (tlsImplicit false)"
                    findings.problems.append(Problem(
                        .error, .stalwartListenerTLSMode, path: url,
                        message: "\(described) speaks \(mode), but \(url) probes \(probesImplicit ? "implicit TLS" : "STARTTLS")",
                        fix: probesImplicit
                            ? "probe it as \(endpoint.scheme == "smtps" || endpoint.scheme == "submissions" ? "submission" : "its STARTTLS scheme")://\(endpoint.host):\(endpoint.port), or set tlsImplicit true on \(listener.id)"
                            : "probe it with the implicit-TLS scheme (smtps, imaps, pop3s, https), or set tlsImplicit false on \(listener.id)"))
                    continue
                }
                findings.lines.append("\(url) → \(described), \(listener.tlsImplicit ? "implicit TLS" : "STARTTLS")")
            }
        }
    }

    /// Does certificate name `pattern` (maybe `*.domain`) cover host `name`?
    static func covers(_ pattern: String, _ name: String) -> Bool {
        let pattern = pattern.lowercased(), name = name.lowercased()
        if pattern == name { return true }
        if pattern.hasPrefix("*."), let dot = name.firstIndex(of: ".") { return name[name.index(after: dot)...] == pattern.dropFirst(2) }
        return false
    }
}

extension CheckRendering {
    /// `{"lines": […], "problems": […]}` for `check --config --format json`.
    public static func json(_ findings: StalwartFindings) -> JSON {
        .object([
            ("lines", .array(findings.lines.map(JSON.string))),
            ("problems", .array(findings.problems.map(problemJSON))),
        ])
    }

    /// The findings as `check`'s text shows problems; empty when there are none.
    public func text(_ findings: StalwartFindings) -> String {
        if findings.lines.isEmpty && findings.problems.isEmpty { return "" }
        func painted(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        var out = "\nWhat the server says it serves:\n"
        for line in findings.lines { out += "  \(line)\n" }
        for problem in findings.problems {
            let label = problem.severity == .error ? painted("error", "1;31") : painted("warning", "1;33")
            out += "  \(label) [\(problem.code.rawValue)] \(problem.message)\n"
            if let fix = problem.fix { out += "    fix: \(fix)\n" }
        }
        return out
    }
}
