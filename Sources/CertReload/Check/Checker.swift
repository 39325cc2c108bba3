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

    public init(options: CheckOptions, accessMethod: AccessMethod? = nil) {
        self.options = options
        self.accessMethod = accessMethod
    }

    public func check(_ sources: [LineageSource]) throws(SystemError) -> CheckReport {
        let account = options.serviceUser ?? Account.current()
        let validator = LineageValidator(
            hostnames: options.hostnames, probeHosts: options.probeHosts, warnDays: options.warnDays, now: options.now)

        // Resolution and validation are independent per lineage: use every core.
        var reports = sources.parallelMap { source in
            Checker.resolveAndValidate(source, validator: validator)
        }

        // Access: one batch for everything, so root forks one probe child per run.
        let oracle = AccessOracle(account: account, method: accessMethod)
        var allSteps: [AccessStep] = []
        var known: Set<AccessStep> = []
        var stepsPerLineage: [[[AccessStep]]] = []
        for report in reports {
            var perFile: [[AccessStep]] = []
            for file in accessibleFiles(report) {
                let steps = accessSteps(for: file)
                perFile.append(steps)
                for step in steps where known.insert(step).inserted { allSteps.append(step) }
            }
            stepsPerLineage.append(perFile)
        }
        let codes = try oracle.results(for: allSteps)
        var results: [AccessStep: Int32] = [:]
        results.reserveCapacity(allSteps.count)
        for (step, code) in zip(allSteps, codes) { results[step] = code }

        let analysis = AccessAnalysis(account: account, method: oracle.method)
        for index in reports.indices {
            let files = accessibleFiles(reports[index])
            let accessProblems = analysis.problems(files: files, stepsByFile: stepsPerLineage[index], results: results)
            // Access problems come right after resolution problems: they are the first thing to fix.
            let resolutionCount = reports[index].problems.prefix { ProblemCode.resolution.contains($0.code) }.count
            reports[index].problems.insert(contentsOf: accessProblems, at: resolutionCount)
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

    private func accessibleFiles(_ report: LineageReport) -> [ResolvedFile] {
        LineageFile.allCases.compactMap { kind in
            guard let file = report.files[kind], file.info != nil else { return nil }
            if let problem = file.problem, problem.code != .unreadable && problem.code != .badPEM { return nil }
            return file
        }
    }

    static func resolveAndValidate(_ source: LineageSource, validator: LineageValidator) -> LineageReport {
        let resolver = LinkResolver()
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

        let (summary, validationProblems) = validator.validate(files, isCertbot: source.isCertbot)
        problems.append(contentsOf: validationProblems)
        return LineageReport(source: source, version: version, certificate: summary, problems: problems, files: files)
    }
}
