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
    /// What happened, for the log (journald fields, MESSAGE_IDs); `OutcomeLog` writes them.
    public var events: [OutcomeEvent] = []
    /// The state record as the job last wrote it, or tried to (nil: nothing to record).
    public var record: TargetState?
    /// False when writing `record` failed (`state-unwritable`): watch mode keeps it and retries.
    public var recordSaved = true

    public var succeeded: Bool { status != .failed }

    public init(target: String, status: Status, lines: [String], problems: [Problem], events: [OutcomeEvent] = []) {
        self.target = target
        self.status = status
        self.lines = lines
        self.problems = problems
        self.events = events
    }

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

/// One target's whole job, as small stages — check → already serving? → reload → verify →
/// record — composed per action (`deploy`, `reload`, `--dry-run`, `verify`, watch).
///
/// Stages add lines, problems and events to the outcome and never log: `OutcomeLog` is the
/// one place that writes them. It never reloads a server whose lineage failed the check: the
/// server keeps its working certificate. Every blocking call (the access probe, TLS probes,
/// the reload itself) runs off Swift's cooperative pool; cancelling the task cuts it short.
public struct TargetPipeline: Sendable {
    public enum Action: Sendable, Equatable {
        /// certbot's deploy hook: always reload (the lineage was just renewed).
        case deploy
        /// By hand: reload unless the server already serves the certificate (`force` always
        /// reloads; `dryRun` stops before reloading).
        case reload(force: Bool, dryRun: Bool)
        /// Probe only.
        case verify

        /// Probe first and stop when the server already serves the certificate on disk.
        var asksWhetherServing: Bool {
            switch self {
            case .deploy: false
            case .reload(let force, _): !force
            case .verify: true
            }
        }

        var isDryRun: Bool { if case .reload(_, true) = self { true } else { false } }
    }

    public var configuration: Configuration
    public var target: TargetConfiguration
    public var logger: Logger
    /// Seconds the reload call may take: a command's own `timeout`, else 30 (network calls and
    /// systemd jobs).
    public var reloadTimeout: Double
    /// The reload to use instead of the configured kind (tests: a counting fake behind the
    /// real stages). Nil in production.
    var reloadTargetOverride: (any ReloadTarget)?

    public init(configuration: Configuration, target: TargetConfiguration, logger: Logger) {
        self.configuration = configuration
        self.target = target
        self.logger = logger
        self.logger[metadataKey: "certreload_target"] = "\(target.name)"
        if case .command(_, let timeout) = target.reload { reloadTimeout = timeout } else { reloadTimeout = 30 }
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
        var job = Job(target: target.name, store: StateStore(directory: configuration.stateDirectory))
        guard let certificates = await checkStage(&job, reloadFollows: action != .verify) else { return job.finished }
        if action.asksWhetherServing, await servingStage(&job, certificates, action: action) == .stop {
            if action == .verify { await explainStage(&job, afterReload: false) }
            return job.finished
        }
        guard action != .verify else { return job.finished }
        guard let reloadTarget = reloadTargetStage(&job) else { return job.finished }
        if action.isDryRun {
            job.outcome.lines.append("would reload \(reloadTarget.summary) (dry run: nothing was changed)")
            job.outcome.status = .wouldReload
            return job.finished
        }
        guard await reloadStage(&job, reloadTarget, deploying: certificates[0]) == .proceed else { return job.finished }
        await verifyStage(&job, certificates)
        await explainStage(&job, afterReload: true)
        return job.finished
    }

    /// The check of this target's lineages, as its user, with its hostnames; run off the
    /// cooperative pool (it forks the access probe and reads files).
    public func check() async throws -> CheckReport {
        let account = try target.user.map { name throws(UsageError) in try Account.named(name) }
        let options = CheckOptions(
            serviceUser: account, hostnames: target.hostnames, probeHosts: target.verify.map(\.host),
            warnDays: target.warnDays ?? configuration.warnDays)
        let sources = try lineageSources()
        return try await Blocking.run { (_) throws(SystemError) -> CheckReport in
            try Checker(options: options).check(sources)
        }
    }

    // MARK: - Stages

    /// What the stages build up: the outcome and the target's state record.
    struct Job {
        var outcome: TargetOutcome
        let store: StateStore
        var state: TargetState
        /// The certificate deployed or verified before this job, to tell "stale" from "wrong".
        let previousSHA256: String?
        /// The check's lineages, for the server's own view (`explainStage`).
        var lineages: [LineageReport] = []

        init(target: String, store: StateStore) {
            outcome = TargetOutcome(target: target, status: .failed, lines: [], problems: [])
            self.store = store
            state = store.load(target)
            previousSHA256 = state.verifiedSHA256 ?? state.deployedSHA256
        }

        /// Failed whenever an error-level problem was found, whatever a stage set.
        var finished: TargetOutcome {
            var outcome = outcome
            if outcome.problems.contains(where: { $0.severity == .error }) { outcome.status = .failed }
            return outcome
        }

        mutating func record() {
            outcome.record = state
            do {
                try store.save(state)
                outcome.recordSaved = true
            } catch {
                outcome.recordSaved = false
                let problem = store.unwritable(error, target: state.target)
                outcome.problems.append(problem)
                outcome.events.append(.finding(problem))
            }
        }
    }

    enum Next: Equatable { case proceed, stop }

    /// 1. Check the lineages as the server's user; nil stops the job (not usable).
    private func checkStage(_ job: inout Job, reloadFollows: Bool) async -> [CertificateSummary]? {
        let report: CheckReport
        do {
            report = try await check()
        } catch let error as UsageError {
            job.outcome.problems.append(Problem(.error, .missing, path: configuration.certbotDirectory, message: error.message, fix: error.fix))
            return nil
        } catch {
            job.outcome.problems.append(Problem(.error, .unreadable, message: "check failed: \(error)"))
            return nil
        }
        job.lineages = report.lineages
        let who = report.serviceUserGiven ? report.account.name : "\(report.account.name) (no user set for this target)"
        for lineage in report.lineages {
            let sha = lineage.certificate.map { "sha256 \($0.sha256.prefix(16))…" } ?? "no certificate"
            let version = lineage.version.map { "version \($0), " } ?? ""
            job.outcome.lines.append("checked \(lineage.name) as \(who): \(lineage.usable ? "usable" : "UNUSABLE") (\(version)\(sha))")
            job.outcome.problems.append(contentsOf: lineage.problems)
            for problem in lineage.problems {
                job.outcome.events.append(.finding(problem, lineage: lineage.name, user: report.account.name))
            }
        }
        guard report.usable else {
            if reloadFollows {
                job.outcome.problems.append(Problem(
                    .error, .reloadSkipped, user: report.account.name,
                    message: "\(target.name) was not reloaded: its lineage failed the check, so the server keeps the certificate it has",
                    fix: "fix the errors above, then run: certreload reload \(target.name)"))
            }
            return nil
        }
        let certificates = report.lineages.compactMap(\.certificate)
        return certificates.isEmpty ? nil : certificates
    }

    /// 2. Does the server already serve it? `.stop` when the answer settles the job: it
    /// serves it (recorded), or this is `verify` and the answer is the result.
    private func servingStage(_ job: inout Job, _ certificates: [CertificateSummary], action: Action) async -> Next {
        let probeOnly = action == .verify
        guard !target.verify.isEmpty else {
            guard probeOnly else { return .proceed }
            job.outcome.lines.append("no verify URLs configured for \(target.name): nothing to probe")
            job.outcome.status = .verified
            return .stop
        }
        // verify retries for verify-timeout. Before a reload the question gets up to 3 s: a
        // server that reloaded a moment ago may still answer from an old worker. A stale
        // answer is then expected, not a finding.
        let results = await probeAll(
            certificates, previous: job.previousSHA256, timeout: probeOnly ? target.verifyTimeout : min(3, target.verifyTimeout))
        let serving = results.allSatisfy(\.succeeded)
        guard serving || probeOnly else { return .proceed }
        report(results, into: &job)
        guard serving else { return .stop }
        job.outcome.status = probeOnly ? .verified : .alreadyServing
        if !probeOnly { job.outcome.lines.append("already serving the certificate on disk: not reloaded (use --force to reload anyway)") }
        // The server runs this certificate: that is what is deployed, whoever reloaded it.
        let now = Int64(time(nil))
        if job.state.deployedSHA256 != certificates[0].sha256 {
            job.state.deployedSHA256 = certificates[0].sha256
            job.state.deployedAt = now
        }
        job.state.verifiedSHA256 = certificates[0].sha256
        job.state.verifiedAt = now
        job.record()
        return .stop
    }

    /// The target's reload kind, built from its configuration.
    private func reloadTargetStage(_ job: inout Job) -> (any ReloadTarget)? {
        if let reloadTargetOverride { return reloadTargetOverride }
        do {
            return try target.makeReloadTarget()
        } catch {
            job.outcome.problems.append(Problem(.error, error.code, message: error.message, fix: error.fix))
            return nil
        }
    }

    /// 3. Reload, and record what was deployed.
    private func reloadStage(_ job: inout Job, _ reloadTarget: any ReloadTarget, deploying certificate: CertificateSummary) async -> Next {
        if let warning = target.insecureWarning {
            job.outcome.problems.append(warning)
            job.outcome.events.append(.warning(warning))
        }
        do {
            let answer = try await reloadTarget.reload(context: ReloadContext(logger: logger, timeout: reloadTimeout))
            job.outcome.lines.append("reloaded \(reloadTarget.summary): \(answer)")
            job.outcome.events.append(.reloaded(reloadTarget.summary))
        } catch {
            let problem = Problem(.error, error.code, path: reloadTarget.summary, message: error.message, fix: error.fix)
            job.outcome.problems.append(problem)
            job.outcome.events.append(.reloadFailed(problem))
            return .stop
        }
        job.state.deployedSHA256 = certificate.sha256
        job.state.deployedAt = Int64(time(nil))
        job.record()
        return .proceed
    }

    /// 4. Prove it over TLS, and record what was verified.
    private func verifyStage(_ job: inout Job, _ certificates: [CertificateSummary]) async {
        guard !target.verify.isEmpty else {
            job.outcome.lines.append("no verify URLs configured: the reload was not proven over TLS (add verify = [\"…\"] to target.\(target.name))")
            job.outcome.status = .deployed
            return
        }
        let results = await probeAll(certificates, previous: job.previousSHA256, timeout: target.verifyTimeout)
        report(results, into: &job)
        guard results.allSatisfy(\.succeeded) else { return }
        job.state.verifiedSHA256 = certificates[0].sha256
        job.state.verifiedAt = Int64(time(nil))
        job.record()
        job.outcome.status = .deployed
    }

    /// 5. What the server itself says it serves (Stalwart's registry; nothing for other
    /// servers). An explanation only: it never decides whether to reload.
    private func explainStage(_ job: inout Job, afterReload: Bool) async {
        let findings = await StalwartView.explain(target: target, lineages: job.lineages, afterReload: afterReload, logger: logger)
        job.outcome.lines.append(contentsOf: findings.lines)
        job.outcome.problems.append(contentsOf: findings.problems)
        for problem in findings.problems { job.outcome.events.append(.finding(problem)) }
    }

    // MARK: - Probing

    /// Probes every verify URL, one after the other; each expects the lineage whose
    /// certificate covers its host (the first lineage when none does).
    func probeAll(_ certificates: [CertificateSummary], previous: String?, timeout: Double) async -> [VerifyResult] {
        var results: [VerifyResult] = []
        for endpoint in target.verify {
            let expected = certificates.first { $0.covers(endpoint.host) } ?? certificates[0]
            var verifier = Verifier(
                endpoint: endpoint, expectedSHA256: expected.sha256, previousSHA256: previous == expected.sha256 ? nil : previous,
                connect: target.connect, caFile: target.caFile, timeout: timeout, probeWithoutSNI: target.probeWithoutSNI)
            verifier.attemptTimeout = min(verifier.attemptTimeout, max(timeout, 3))
            results.append(await verifier.verify())
        }
        return results
    }

    /// Verify results into lines, problems and events.
    private func report(_ results: [VerifyResult], into job: inout Job) {
        for result in results where result.succeeded { job.outcome.lines.append("verified \(result.summary)") }
        for result in results {
            job.outcome.problems.append(contentsOf: result.problems)
            for problem in result.problems {
                job.outcome.events.append(.finding(problem, verifyURL: result.endpoint.url))
            }
        }
    }
}
