#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Watch-mode timing with the defaults filled in: settle 2 s, settle-max 60 s, recheck 1 h,
/// poll-interval 30 s.
public struct WatchTiming: Sendable, Equatable {
    /// How long a lineage must be quiet before it is looked at.
    public var settle: Duration
    /// How long a lineage may stay inconsistent before that is reported.
    public var settleMax: Duration
    /// How often everything is checked again (expiry warnings) while nothing changes.
    public var recheck: Duration
    /// How often a lineage inotify cannot watch (its limits reached) is polled instead.
    public var pollInterval: Duration

    public init(
        settle: Duration = .seconds(2), settleMax: Duration = .seconds(60), recheck: Duration = .seconds(3600),
        pollInterval: Duration = .seconds(30)
    ) {
        self.settle = settle
        self.settleMax = settleMax
        self.recheck = recheck
        self.pollInterval = pollInterval
    }

    public init(_ settings: WatchSettings) {
        self.init(
            settle: .seconds(settings.settle ?? 2), settleMax: .seconds(settings.settleMax ?? 60),
            recheck: .seconds(settings.recheck ?? 3600), pollInterval: .seconds(settings.pollInterval ?? 30))
    }
}

/// One look at a lineage on disk: which version its links point at, and whether the four
/// links agree and the key matches the certificate.
///
/// This is resolution and validation as the current user, not the target's full check
/// (access as the service user, hostnames): `TargetPipeline` does that before reloading.
public struct LineageSnapshot: Sendable, Equatable {
    public var name: String
    public var version: Int?
    public var sha256: String?
    public var notAfter: Int64?
    /// All links at one version, every file there, key matching the certificate.
    public var consistent: Bool
    /// The problems that make it inconsistent (empty when consistent).
    public var problems: [Problem]

    /// Resolves and validates `source` now, off the cooperative pool (it reads files).
    public static func inspected(_ source: LineageSource) async -> LineageSnapshot {
        await Blocking.run { _ in inspect(source) }
    }

    /// Resolves and validates `source` now.
    public static func inspect(_ source: LineageSource, now: Int64? = nil) -> LineageSnapshot {
        let validator = LineageValidator(now: now ?? Int64(time(nil)))
        let report = Checker.resolveAndValidate(source, validator: validator)
        let blocking = report.problems.filter { $0.severity == .error && ProblemCode.inconsistentLineage.contains($0.code) }
        let consistent = blocking.isEmpty && report.certificate != nil && (report.version != nil || !source.isCertbot)
        return LineageSnapshot(
            name: source.name, version: report.version, sha256: report.certificate?.sha256,
            notAfter: report.certificate?.notAfter, consistent: consistent, problems: blocking)
    }

    /// "version 3, sha256 0a1b2c3d…" or the first problem.
    public var summary: String {
        if consistent {
            return "version \(version.map(String.init) ?? "?"), sha256 \(sha256.map { String($0.prefix(16)) } ?? "?")…"
        }
        return problems.first.map { "[\($0.code.rawValue)] \($0.message)" } ?? "no certificate"
    }
}

/// How a settle window ended.
public enum SettleResult: Sendable, Equatable {
    /// Quiet for the settle window and consistent.
    case consistent(LineageSnapshot)
    /// Still inconsistent when settle-max ran out (the last look).
    case inconsistent(LineageSnapshot)
    /// Stopped before either.
    case stopped
}

/// The settle logic shared by `certreload watch` and `certreload deploy --settle`: wait until
/// nothing has changed for `settle`, then look; if the set is half-updated, wait for quiet
/// again, until `settleMax` has passed since the window opened.
///
/// It never decides from a single event: certbot unlinks and re-creates each link, so
/// between two events the lineage can be missing a link or pair a new certificate with the old key.
public struct SettleWindow: Sendable {
    public var settle: Duration
    public var settleMax: Duration

    public init(settle: Duration, settleMax: Duration) {
        self.settle = settle
        self.settleMax = settleMax
    }

    /// Waits on `changes` (rung on every change to the lineage) until the lineage settles.
    /// `inspect` looks at the lineage; `shouldStop` is asked after every wake-up.
    func wait(
        changes: Doorbell, inspect: () async -> LineageSnapshot, shouldStop: () -> Bool = { false }
    ) async -> SettleResult {
        let clock = ContinuousClock()
        let opened = clock.now
        while true {
            // Quiet for a whole window: every change starts the window again.
            while await changes.wait(until: clock.now.advanced(by: settle)) {
                if shouldStop() || Task.isCancelled { return .stopped }
            }
            if shouldStop() || Task.isCancelled { return .stopped }
            let snapshot = await inspect()
            if snapshot.consistent { return .consistent(snapshot) }
            if clock.now - opened >= settleMax { return .inconsistent(snapshot) }
        }
    }
}
