public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What happened to one target in `deploy`, `reload` or `verify`.
public struct TargetOutcome: Sendable {
    public enum Status: String, Sendable {
        /// Checked, reloaded and verified.
        case deployed
        /// The server already served the certificate on disk; nothing was reloaded.
        case alreadyServing = "already-serving"
        /// `--dry-run`: checked, and would have reloaded.
        case wouldReload = "would-reload"
        /// `verify`: every endpoint serves the certificate on disk.
        case verified
        /// Something failed; `problems` says what.
        case failed
    }

    public var target: String
    public var status: Status
    /// Lines for a person, in order (what was checked, reloaded, verified).
    public var lines: [String]
    public var problems: [Problem]

    public var succeeded: Bool { status != .failed }

    /// The lines and problems, each prefixed with `[target]`, then the status: what certbot's
    /// log and a terminal show.
    public var text: String {
        var text = ""
        for line in lines { text += "[\(target)] \(line)\n" }
        for problem in problems {
            text += "[\(target)] \(problem.severity.rawValue) [\(problem.code.rawValue)] \(problem.message)\n"
            if let fix = problem.fix { text += "[\(target)]   fix: \(fix)\n" }
        }
        text += "[\(target)] \(status == .failed ? "FAILED" : "OK"): \(status.rawValue)\n"
        return text
    }
}

/// One target's whole job: check its lineages as its user, reload its server, prove over TLS
/// that the server serves the certificate on disk, and record what was deployed.
///
/// It never reloads a server whose lineage failed the check: the server keeps its working
/// certificate.
public struct TargetPipeline: Sendable {
    public enum Action: Sendable, Equatable {
        /// certbot's deploy hook: always reload (the lineage was just renewed).
        case deploy
        /// By hand: reload unless the server already serves the certificate (`force` always
        /// reloads; `dryRun` stops before reloading).
        case reload(force: Bool, dryRun: Bool)
        /// Probe only.
        case verify
    }

    public var configuration: Configuration
    public var target: TargetConfiguration
    public var logger: Logger
    /// Seconds the reload call may take.
    public var reloadTimeout: Double = 30

    public init(configuration: Configuration, target: TargetConfiguration, logger: Logger) {
        self.configuration = configuration
        self.target = target
        self.logger = logger
        self.logger[metadataKey: "certreload_target"] = "\(target.name)"
    }

    /// The lineages this target serves, as check sources.
    public func lineageSources() throws(UsageError) -> [LineageSource] {
        if let cert = target.certFile, let key = target.keyFile {
            return [.explicit(cert: cert, key: key, chain: target.chainFile)]
        }
        let directory = CertbotDirectory(configuration.certbotDirectory)
        var sources: [LineageSource] = []
        for name in target.lineages {
            sources.append(try directory.lineage(name))
        }
        return sources
    }

    public func run(_ action: Action) async -> TargetOutcome {
        var outcome = TargetOutcome(target: target.name, status: .failed, lines: [], problems: [])
        let store = StateStore(directory: configuration.stateDirectory)
        var state = store.load(target.name)

        // 1. Check the lineages as the server's user.
        let report: CheckReport
        do {
            report = try check()
        } catch let error as UsageError {
            outcome.problems.append(Problem(.error, .missing, path: configuration.certbotDirectory, message: error.message, fix: error.fix))
            return finish(outcome)
        } catch {
            outcome.problems.append(Problem(.error, .unreadable, message: "check failed: \(error)"))
            return finish(outcome)
        }
        let who = report.serviceUserGiven ? report.account.name : "\(report.account.name) (no user set for this target)"
        for lineage in report.lineages {
            let sha = lineage.certificate.map { "sha256 \($0.sha256.prefix(16))…" } ?? "no certificate"
            let version = lineage.version.map { "version \($0), " } ?? ""
            outcome.lines.append("checked \(lineage.name) as \(who): \(lineage.usable ? "usable" : "UNUSABLE") (\(version)\(sha))")
            outcome.problems.append(contentsOf: lineage.problems)
            logFindings(lineage)
        }
        guard report.usable else {
            if action != .verify {
                outcome.problems.append(Problem(
                    .error, .reloadSkipped, user: report.account.name,
                    message: "\(target.name) was not reloaded: its lineage failed the check, so the server keeps the certificate it has",
                    fix: "fix the errors above, then run: certreload reload \(target.name)"))
            }
            return finish(outcome)
        }
        let certificates = report.lineages.compactMap(\.certificate)
        guard !certificates.isEmpty else { return finish(outcome) }

        // 2. Does the server already serve it? (reload without --force, and verify.)
        let previous = state.verifiedSHA256 ?? state.deployedSHA256
        if action == .verify || action == .reload(force: false, dryRun: false) || action == .reload(force: false, dryRun: true) {
            if target.verify.isEmpty {
                if action == .verify {
                    outcome.lines.append("no verify URLs configured for \(target.name): nothing to probe")
                    outcome.status = .verified
                    return finish(outcome)
                }
            } else {
                // verify retries for verify-timeout. Before a reload the question gets up to 3 s:
                // a server that reloaded a moment ago may still answer from an old worker.
                let (results, urlProblems) = await verify(
                    certificates, previous: previous, timeout: action == .verify ? target.verifyTimeout : min(3, target.verifyTimeout),
                    logProblems: action == .verify)
                outcome.problems.append(contentsOf: urlProblems)
                if urlProblems.isEmpty && results.allSatisfy(\.succeeded) {
                    for result in results { outcome.lines.append("verified \(result.summary)") }
                    outcome.problems.append(contentsOf: results.flatMap(\.problems))
                    outcome.status = action == .verify ? .verified : .alreadyServing
                    if action != .verify { outcome.lines.append("already serving the certificate on disk: not reloaded (use --force to reload anyway)") }
                    // The server runs this certificate: that is what is deployed, whoever reloaded it.
                    let now = Int64(time(nil))
                    if state.deployedSHA256 != certificates[0].sha256 {
                        state.deployedSHA256 = certificates[0].sha256
                        state.deployedAt = now
                    }
                    state.verifiedSHA256 = certificates[0].sha256
                    state.verifiedAt = now
                    record(state, in: store, outcome: &outcome)
                    return finish(outcome)
                }
                if action == .verify {
                    for result in results where result.succeeded { outcome.lines.append("verified \(result.summary)") }
                    outcome.problems.append(contentsOf: results.flatMap(\.problems))
                    return finish(outcome)
                }
            }
        }

        // 3. Reload.
        let reloadTarget: any ReloadTarget
        do {
            reloadTarget = try target.makeReloadTarget()
        } catch {
            outcome.problems.append(Problem(.error, error.code, message: error.message, fix: error.fix))
            return finish(outcome)
        }
        if action == .reload(force: false, dryRun: true) || action == .reload(force: true, dryRun: true) {
            outcome.lines.append("would reload \(reloadTarget.summary) (dry run: nothing was changed)")
            outcome.status = .wouldReload
            return finish(outcome)
        }
        do {
            let context = ReloadContext(logger: logger, timeout: reloadTimeout)
            let answer = try reloadTarget.reload(context: context)
            outcome.lines.append("reloaded \(reloadTarget.summary): \(answer)")
            logger.notice(
                "reloaded \(reloadTarget.summary)",
                metadata: ["certreload_code": "reloaded", "MESSAGE_ID": "\(MessageID.reloaded)"])
        } catch {
            outcome.problems.append(Problem(.error, error.code, path: reloadTarget.summary, message: error.message, fix: error.fix))
            logger.error(
                "reload failed: \(error.message)",
                metadata: ["certreload_code": "\(error.code.rawValue)", "MESSAGE_ID": "\(MessageID.reloadFailed)"])
            return finish(outcome)
        }
        state.deployedSHA256 = certificates[0].sha256
        state.deployedAt = Int64(time(nil))
        record(state, in: store, outcome: &outcome)

        // 4. Prove it.
        if target.verify.isEmpty {
            outcome.lines.append("no verify URLs configured: the reload was not proven over TLS (add verify = [\"…\"] to target.\(target.name))")
            outcome.status = .deployed
            return finish(outcome)
        }
        let (results, urlProblems) = await verify(certificates, previous: previous, timeout: target.verifyTimeout)
        outcome.problems.append(contentsOf: urlProblems)
        for result in results where result.succeeded { outcome.lines.append("verified \(result.summary)") }
        outcome.problems.append(contentsOf: results.flatMap(\.problems))
        if urlProblems.isEmpty && results.allSatisfy(\.succeeded) {
            state.verifiedSHA256 = certificates[0].sha256
            state.verifiedAt = Int64(time(nil))
            record(state, in: store, outcome: &outcome)
            outcome.status = .deployed
        }
        return finish(outcome)
    }

    /// The check of this target's lineages, as its user, with its hostnames.
    public func check() throws -> CheckReport {
        let account = try target.user.map { name throws(UsageError) in try Account.named(name) }
        let options = CheckOptions(
            serviceUser: account, hostnames: target.hostnames, warnDays: target.warnDays ?? configuration.warnDays)
        return try Checker(options: options).check(lineageSources())
    }

    /// Probes every verify URL; each expects the lineage whose certificate covers its host.
    /// A URL that does not parse is a problem of its own (the loader normally refuses it first).
    func verify(
        _ certificates: [CertificateSummary], previous: String?, timeout: Double, retries: Bool = true,
        logProblems: Bool = true
    ) async -> (results: [VerifyResult], problems: [Problem]) {
        var results: [VerifyResult] = []
        var problems: [Problem] = []
        for url in target.verify {
            let endpoint: VerifyEndpoint
            do {
                endpoint = try VerifyEndpoint(parsing: url)
            } catch {
                problems.append(Problem(.error, .verifyConnectFailed, path: url, message: "verify URL: \(error.message)", fix: error.fix))
                continue
            }
            let expected = certificates.first { covers($0, endpoint.host) } ?? certificates[0]
            var verifier = Verifier(
                endpoint: endpoint, expectedSHA256: expected.sha256, previousSHA256: previous == expected.sha256 ? nil : previous,
                connect: target.connect, caFile: target.caFile, timeout: timeout, probeWithoutSNI: target.probeWithoutSNI)
            verifier.attemptTimeout = min(verifier.attemptTimeout, max(timeout, 3))
            verifier.retries = retries
            let result = await verifier.verify()
            // Before a reload a stale answer is expected, not an event worth an error entry.
            for problem in result.problems where logProblems {
                logger.log(
                    level: problem.severity == .error ? .error : .warning, "\(problem.message)",
                    metadata: ["certreload_code": "\(problem.code.rawValue)", "certreload_verify_url": "\(url)"])
            }
            results.append(result)
        }
        return (results, problems)
    }

    private func covers(_ certificate: CertificateSummary, _ host: String) -> Bool {
        certificate.subjectAltNames.contains { name in
            let lower = name.lowercased()
            if lower == host.lowercased() { return true }
            if lower.hasPrefix("*."), let dot = host.firstIndex(of: ".") {
                return host[host.index(after: dot)...].lowercased() == lower.dropFirst(2)
            }
            return false
        }
    }

    private func record(_ state: TargetState, in store: StateStore, outcome: inout TargetOutcome) {
        do {
            try store.save(state)
        } catch {
            outcome.problems.append(store.unwritable(error, target: target.name))
        }
    }

    private func logFindings(_ lineage: LineageReport) {
        for problem in lineage.problems {
            var metadata: Logger.Metadata = [
                "certreload_lineage": "\(lineage.name)", "certreload_code": "\(problem.code.rawValue)",
            ]
            if let path = problem.path { metadata["certreload_path"] = "\(path)" }
            if problem.code == .notTraversable || problem.code == .unreadable {
                metadata["MESSAGE_ID"] = "\(MessageID.becameUnreadable)"
            } else if problem.code == .expiringSoon {
                metadata["MESSAGE_ID"] = "\(MessageID.expiring)"
            }
            logger.log(level: problem.severity == .error ? .error : .warning, "\(problem.message)", metadata: metadata)
        }
    }

    private func finish(_ outcome: TargetOutcome) -> TargetOutcome {
        var outcome = outcome
        if outcome.problems.contains(where: { $0.severity == .error }) { outcome.status = .failed }
        return outcome
    }
}

/// journald MESSAGE_IDs, one per kind of event: `journalctl MESSAGE_ID=…` finds them.
public enum MessageID {
    public static let reloaded = "5b2f1e8c3a7d4e6f9b0c1d2e3f4a5b6c"
    public static let reloadFailed = "8d4c2b1a0f9e4d3c8b7a6f5e4d3c2b1a"
    public static let becameUnreadable = "c3e1a9f75b2d4c68a0e4f1b3d5c7e9a2"
    public static let expiring = "e7a5c3b1d9f24e6a8c0b2d4f6a8c0e1b"
}
