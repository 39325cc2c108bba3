public import Logging

/// Something the watch loop reacts to. The public `WatchService.run()` turns inotify,
/// signals and timers into these; tests feed them from an `AsyncStream`.
public enum WatchEvent: Sendable, Equatable {
    /// Something in `live/NAME/` or `archive/NAME/` changed, or the lineage came or went.
    case lineageChanged(String)
    /// Permissions or ownership changed in the lineage's directories (IN_ATTRIB).
    case attributesChanged(String)
    /// Events were lost (IN_Q_OVERFLOW) or `live/` itself changed: look at everything.
    case rescan
    /// The configuration file's directory changed.
    case configurationChanged
    /// SIGHUP: load the configuration again.
    case reloadConfiguration
    /// The recheck timer: expiry warnings while nothing changes.
    case recheck
    /// SIGTERM or SIGINT.
    case stop
}

/// Runs a target's pipeline; a protocol so that tests can count reloads.
public protocol WatchTargetRunner: Sendable {
    /// `TargetPipeline(configuration:target:logger:).run(action)`.
    func run(
        _ action: TargetPipeline.Action, target: TargetConfiguration, configuration: Configuration, logger: Logger
    ) async -> TargetOutcome
    /// The target's full check (as its user, with its hostnames).
    func check(target: TargetConfiguration, configuration: Configuration, logger: Logger) async throws -> CheckReport
}

extension WatchTargetRunner {
    public func check(target: TargetConfiguration, configuration: Configuration, logger: Logger) async throws -> CheckReport {
        try await TargetPipeline(configuration: configuration, target: target, logger: logger).check()
    }
}

/// The real thing: `TargetPipeline`.
public struct PipelineRunner: WatchTargetRunner {
    public init() {}

    public func run(
        _ action: TargetPipeline.Action, target: TargetConfiguration, configuration: Configuration, logger: Logger
    ) async -> TargetOutcome {
        await TargetPipeline(configuration: configuration, target: target, logger: logger).run(action)
    }
}

/// What the watch loop tells its surroundings (systemd, the event source).
struct WatchHooks: Sendable {
    /// The first pass is done and the watches are in place (READY=1).
    var ready: @Sendable () -> Void = {}
    /// A configuration reload starts (RELOADING=1); `ready` follows.
    var reloading: @Sendable () -> Void = {}
    /// SIGTERM/SIGINT arrived (STOPPING=1).
    var stopping: @Sendable () -> Void = {}
    /// One line for `systemctl status` (STATUS=).
    var status: @Sendable (String) -> Void = { _ in }
    /// The lineages to watch changed (at start and after a configuration reload).
    var watchLineages: @Sendable (Configuration) -> Void = { _ in }
}
