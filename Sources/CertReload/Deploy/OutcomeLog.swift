public import Logging

/// Something a pipeline stage found or did that belongs in the log.
public enum OutcomeEvent: Sendable {
    /// A problem found by the check (with its lineage and the account it was checked as) or
    /// by a probe (with the verify URL).
    case finding(Problem, lineage: String? = nil, user: String? = nil, verifyURL: String? = nil)
    /// The server accepted the reload.
    case reloaded(String)
    /// The reload failed; the problem says why.
    case reloadFailed(Problem)
    /// A warning logged every time it happens, never folded into an earlier run's findings
    /// (a request sent with TLS verification off).
    case warning(Problem)

    /// Identifies a finding across runs, so watch mode logs a lasting problem once.
    var findingKey: String? {
        guard case .finding(let problem, let lineage, _, let url) = self else { return nil }
        return [problem.code.rawValue, lineage ?? "", url ?? "", problem.path ?? ""].joined(separator: "\u{1f}")
    }
}

/// The one place that turns a pipeline's outcome into log entries: journald fields
/// (`CERTRELOAD_TARGET`, `_LINEAGE`, `_CODE`, `_PATH`, `_USER`, `_VERIFY_URL`) and the
/// documented `MESSAGE_ID`s.
public struct OutcomeLog: Sendable {
    public var logger: Logger
    /// Findings with these codes are not logged (watch logs access changes as transitions).
    public var skippingCodes: Set<ProblemCode> = []

    public init(logger: Logger, skippingCodes: Set<ProblemCode> = []) {
        self.logger = logger
        self.skippingCodes = skippingCodes
    }

    /// Logs `outcome`'s events; findings whose key is in `alreadyLogged` are left out. Returns
    /// the keys of this outcome's findings, to pass as `alreadyLogged` next time.
    @discardableResult
    public func log(_ outcome: TargetOutcome, alreadyLogged: Set<String> = []) -> Set<String> {
        var logger = logger
        logger[metadataKey: "certreload_target"] = "\(outcome.target)"
        var keys: Set<String> = []
        for event in outcome.events {
            switch event {
            case .finding(let problem, let lineage, let user, let url):
                guard !skippingCodes.contains(problem.code), let key = event.findingKey else { continue }
                keys.insert(key)
                if alreadyLogged.contains(key) { continue }
                var metadata: Logger.Metadata = ["certreload_code": "\(problem.code.rawValue)"]
                if let lineage { metadata["certreload_lineage"] = "\(lineage)" }
                if let path = problem.path, url == nil { metadata["certreload_path"] = "\(path)" }
                if let user = problem.user ?? user, ProblemCode.access.contains(problem.code) {
                    metadata["certreload_user"] = "\(user)"
                }
                if let url { metadata["certreload_verify_url"] = "\(url)" }
                if let id = MessageID.forProblem(problem.code) { metadata["MESSAGE_ID"] = "\(id)" }
                logger.log(level: problem.severity == .error ? .error : .warning, "\(problem.message)", metadata: metadata)
            case .reloaded(let summary):
                logger.notice(
                    "reloaded \(summary)", metadata: ["certreload_code": "reloaded", "MESSAGE_ID": "\(MessageID.reloaded)"])
            case .warning(let problem):
                logger.warning("\(problem.message)", metadata: ["certreload_code": "\(problem.code.rawValue)"])
            case .reloadFailed(let problem):
                logger.error(
                    "reload failed: \(problem.message)",
                    metadata: ["certreload_code": "\(problem.code.rawValue)", "MESSAGE_ID": "\(MessageID.reloadFailed)"])
            }
        }
        return keys
    }
}
