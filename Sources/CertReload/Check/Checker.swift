import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `certreload check` found about one lineage.
public struct LineageReport: Sendable {
    public var source: LineageSource
    /// The archive version all four links agree on, nil when they do not agree.
    public var version: Int?
    public var certificate: CertificateSummary?
    public var problems: [Problem]
    /// The files as resolved (for later stages: reload needs the paths, verify the leaf).
    public var files: [LineageFile: ResolvedFile]
    /// The whole access fix for the checked user (certbot lineages with an access problem).
    public var fixPlan: AccessFixPlan?

    public var name: String { source.name }
    public var path: String { source.path }
    /// No error: the server can be given these files.
    public var usable: Bool { !problems.contains { $0.severity == .error } }
}

/// The whole check: one report per lineage, and how access was decided.
public struct CheckReport: Sendable {
    public var lineages: [LineageReport]
    public var account: Account
    public var accessMethod: AccessMethod
    /// false when no service user was given and certreload checked as itself.
    public var serviceUserGiven: Bool

    public var usable: Bool { lineages.allSatisfy(\.usable) }
}

/// Options shared by every lineage in one check.
public struct CheckOptions: Sendable {
    /// The service user; nil checks as the account certreload runs as.
    public var serviceUser: Account?
    public var hostnames: [String]
    /// Names whose coverage is recorded (`CertificateSummary.coveredHosts`) but not required.
    public var probeHosts: [String]
    public var warnDays: Int
    public var now: Int64

    public init(
        serviceUser: Account? = nil, hostnames: [String] = [], probeHosts: [String] = [], warnDays: Int = 14,
        now: Int64? = nil
    ) {
        self.serviceUser = serviceUser
        self.hostnames = hostnames
        self.probeHosts = probeHosts
        self.warnDays = warnDays
        self.now = now ?? Int64(time(nil))
    }
}

/// Resolves, validates and access-checks lineages. It never changes a file.
public struct Checker: Sendable {
    public var options: CheckOptions
    /// nil: try when possible (root, or the account itself), else evaluate.
    public var accessMethod: AccessMethod?

    /// From this many lineages on, the access probe runs beside the validation.
    static let backgroundProbeMinimum = 32

    public init(options: CheckOptions, accessMethod: AccessMethod? = nil) {
        self.options = options
        self.accessMethod = accessMethod
    }

    public func check(_ sources: [LineageSource]) throws(SystemError) -> CheckReport {
        let account = options.serviceUser ?? Account.current()
        let validator = LineageValidator(
            hostnames: options.hostnames, probeHosts: options.probeHosts, warnDays: options.warnDays, now: options.now)

        // Resolution (links, reads) and the access steps of each file: independent per
        // lineage, on every core.
        let directories = PhysicalDirectories()
        let resolved = sources.parallelMap { source in
            let lineage = Checker.resolve(source, directories: directories)
            return (lineage: lineage, steps: accessSteps(for: Checker.accessibleFiles(lineage.files)))
        }

        // Access: one batch for everything, so root forks one probe child per run. With many
        // lineages the probe runs on a thread of its own while they are validated (it mostly
        // waits for the child, whose system calls then overlap the validation).
        let oracle = AccessOracle(account: account, method: accessMethod)
        var allSteps: [AccessStep] = []
        var known: Set<AccessStep> = []
        for lineage in resolved {
            for steps in lineage.steps {
                for step in steps where known.insert(step).inserted { allSteps.append(step) }
            }
        }
        let probe = DeferredResult(inBackground: resolved.count >= Checker.backgroundProbeMinimum) { [allSteps] () throws(SystemError) -> [Int32] in
            try oracle.results(for: allSteps)
        }

        let validated = resolved.parallelMap { lineage in lineage.lineage.validated(by: validator) }

        let codes = try probe.value()
        let results: [AccessStep: Int32] = {
            var table: [AccessStep: Int32] = [:]
            table.reserveCapacity(allSteps.count)
            for (step, code) in zip(allSteps, codes) { table[step] = code }
            return table
        }()

        let analysis = AccessAnalysis(account: account, method: oracle.method)
        let accessProblems = Array(validated.indices).parallelMap { index in
            analysis.problems(
                files: Checker.accessibleFiles(validated[index].files), stepsByFile: resolved[index].steps, results: results)
        }
        var reports = validated
        for index in reports.indices {
            // Access problems come right after resolution problems: they are the first thing to fix.
            let resolutionCount = reports[index].problems.prefix { ProblemCode.resolution.contains($0.code) }.count
            reports[index].problems.insert(contentsOf: accessProblems[index], at: resolutionCount)
            reports[index].fixPlan = Checker.fixPlan(for: reports[index], account: account)
        }
        return CheckReport(
            lineages: reports, account: account, accessMethod: oracle.method,
            serviceUserGiven: options.serviceUser != nil)
    }

    /// The whole fix, when a certbot lineage has an access problem and the user is not root.
    static func fixPlan(for report: LineageReport, account: Account) -> AccessFixPlan? {
        guard report.source.isCertbot, account.uid != 0,
            report.problems.contains(where: { ProblemCode.access.contains($0.code) })
        else { return nil }
        let certbotDirectory = Paths.directory(of: Paths.directory(of: report.path))
        let plan = AccessFixPlanner(certbotDirectory: certbotDirectory, account: account).plan(lineages: [report.name])
        return plan.isEmpty ? nil : plan
    }

    private static func accessibleFiles(_ files: [LineageFile: ResolvedFile]) -> [ResolvedFile] {
        LineageFile.allCases.compactMap { kind in
            guard let file = files[kind], file.info != nil else { return nil }
            if let problem = file.problem, problem.code != .unreadable && problem.code != .badPEM { return nil }
            return file
        }
    }

    static func resolveAndValidate(_ source: LineageSource, validator: LineageValidator) -> LineageReport {
        resolve(source).validated(by: validator)
    }

    /// Follows the links of one lineage and reads its files; the problems of resolution.
    static func resolve(_ source: LineageSource, directories: PhysicalDirectories = PhysicalDirectories()) -> ResolvedLineage {
        let resolver = LinkResolver(directories: directories)
        var files: [LineageFile: ResolvedFile] = [:]
        var problems: [Problem] = []
        for kind in LineageFile.allCases {
            guard let path = source.files[kind] else { continue }
            let file = resolver.resolve(kind, at: path)
            files[kind] = file
            if let problem = file.problem { problems.append(problem) }
        }

        var version: Int?
        if source.isCertbot {
            let linked = LineageFile.allCases.compactMap { files[$0] }.filter { $0.linkTarget != nil }
            for file in linked where file.version == nil {
                let target = file.linkTarget ?? ""
                problems.append(Problem(
                    .error, .wrongLinkTarget, path: file.path,
                    message: "\(file.path) points at \(target), which is not a \(file.kind.rawValue)N.pem file of certbot's archive",
                    fix: "ln -sfn ../../archive/\(source.name)/\(file.kind.rawValue)N.pem \(file.path)   # N = the version the other links use"))
            }
            let versions = Set(linked.compactMap(\.version))
            if versions.count == 1, let only = versions.first, linked.allSatisfy({ $0.version != nil }) {
                version = only
            } else if versions.count > 1 {
                let detail = linked.map { "\($0.kind.linkName) → \($0.linkTarget ?? "?")" }.joined(separator: ", ")
                problems.append(Problem(
                    .error, .versionMismatch, path: source.path,
                    message: "the links in \(source.path) point at different archive versions (\(detail)): certbot is renewing this lineage right now, or a renewal stopped half-way",
                    fix: "wait for certbot to finish; if it is not running: certbot renew --force-renewal --cert-name \(source.name)"))
            }
        }

        return ResolvedLineage(source: source, version: version, files: files, problems: problems)
    }
}

/// One lineage after resolution, before validation.
struct ResolvedLineage: Sendable {
    var source: LineageSource
    var version: Int?
    var files: [LineageFile: ResolvedFile]
    var problems: [Problem]

    func validated(by validator: LineageValidator) -> LineageReport {
        let (summary, validationProblems) = validator.validate(files, isCertbot: source.isCertbot)
        return LineageReport(
            source: source, version: version, certificate: summary, problems: problems + validationProblems, files: files)
    }
}

/// A value computed now, or on a thread of its own and waited for with `value()`.
///
/// `@unchecked Sendable`: `result` is written once, before `done` is signalled, and read only
/// after waiting for it.
private final class DeferredResult<T: Sendable>: @unchecked Sendable {
    private var result: Result<T, SystemError>?
    private let done = DispatchSemaphore(value: 0)

    init(inBackground: Bool, _ body: @escaping @Sendable () throws(SystemError) -> T) {
        let started = inBackground && DedicatedThread.start { [self] in
            result = Result { () throws(SystemError) -> T in try body() }
            done.signal()
        }
        if !started {
            result = Result { () throws(SystemError) -> T in try body() }
            done.signal()
        }
    }

    func value() throws(SystemError) -> T {
        done.wait()
        return try result!.get()
    }
}
