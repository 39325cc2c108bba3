import Dispatch
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension WatchService {
    /// Runs as a systemd `Type=notify` service until SIGTERM or SIGINT: inotify on the
    /// lineages and the configuration's directory, SIGHUP reloads the configuration, the
    /// watchdog is fed at half of `WATCHDOG_USEC`. Sends READY=1 once the first pass is done
    /// and the watches are in place.
    public func run() async throws(SystemError) {
        let (events, continuation) = AsyncStream.makeStream(of: WatchEvent.self)
        let notifier = SystemdNotifier()
        let logger = self.logger
        let pollInterval = Locked(WatchTiming(configuration.watch).pollInterval)
        // The fallback for what inotify cannot watch: the same events, from stat() every poll-interval.
        let inotifyBox = Locked<InotifySource?>(nil)
        let poller = PollingSource(interval: pollInterval.withLock { $0 }, continuation: continuation) {
            inotifyBox.withLock { $0 }?.addMissingWatches()
        }
        let certbotDirectory = Locked(configuration.certbotDirectory)
        var inotify: InotifySource?
        do {
            inotify = try InotifySource(
                certbotDirectory: configuration.certbotDirectory, configPath: configuration.path, continuation: continuation,
                coverage: { coverage in
                    let interval = pollInterval.withLock { $0 }
                    poller.poll(certbotDirectory: certbotDirectory.withLock { $0 }, lineages: coverage.unwatched, interval: interval)
                    WatchService.logCoverage(coverage, pollInterval: interval, logger: logger)
                })
        } catch {
            // No inotify at all (fs.inotify.max_user_instances, or the kernel's memory): poll everything.
            let interval = pollInterval.withLock { $0 }
            let (message, fix) = InotifyLimits.instanceLimitMessage(
                error: error, lineages: Set(configuration.targets.flatMap(\.lineages)).count, pollInterval: interval)
            logger.error(
                "\(message). Fix: \(fix)",
                metadata: [
                    "certreload_code": "\(InotifyLimits.Kind.instances.code)", "MESSAGE_ID": "\(MessageID.inotifyLimit)",
                    "certreload_path": "\(configuration.certbotDirectory)", "certreload_user": "\(Account.current().name)",
                ])
            inotify = nil
        }
        inotifyBox.withLock { $0 = inotify }
        let signals = SignalEvents(continuation: continuation)
        defer {
            signals.cancel()
            inotify?.cancel()
            poller.cancel()
        }
        let hooks = WatchHooks(
            ready: { notifier.notify("READY=1") },
            reloading: { notifier.reloading() },
            stopping: {
                logger.notice("stopping: a reload in flight may finish")
                notifier.notify("STOPPING=1")
            },
            status: { line in notifier.notify("STATUS=\(line)") },
            watchLineages: { [inotify] configuration in
                let names = configuration.targets.flatMap(\.lineages)
                let interval = WatchTiming(configuration.watch).pollInterval
                pollInterval.withLock { $0 = interval }
                certbotDirectory.withLock { $0 = configuration.certbotDirectory }
                if let inotify {
                    // Reports the lineages it could not watch through `coverage`, which polls them.
                    inotify.watch(certbotDirectory: configuration.certbotDirectory, lineages: names)
                    poller.change(interval: interval)
                } else {
                    poller.poll(certbotDirectory: configuration.certbotDirectory, lineages: Set(names), interval: interval)
                }
            })
        let lineageCount = Set(configuration.targets.flatMap(\.lineages)).count
        logger.notice(
            "watching \(lineageCount) lineage(s) in \(configuration.certbotDirectory) for \(configuration.targets.count) target(s); configuration \(configuration.path)")
        // The watchdog rides a Dispatch timer of its own, not a task: it keeps pinging even if
        // something did block the cooperative pool (nothing should: blocking calls run on
        // threads of their own), and it costs one wake-up per interval. A queue of its own,
        // not `.global()`: a global queue's worker threads start libdispatch's 1 s pool monitor.
        let watchdog = SystemdNotifier.watchdogInterval().map { interval in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "certreload.watchdog"))
            let nanoseconds = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
            timer.schedule(deadline: .now(), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(100))
            timer.setEventHandler { notifier.notify("WATCHDOG=1") }
            timer.resume()
            return timer
        }
        defer { watchdog?.cancel() }
        await run(events: events, runner: PipelineRunner(), hooks: hooks)
    }

    /// Logs what inotify could not watch (the watch limit, with its sysctl, numbers and fix),
    /// or that every watch is in place again.
    static func logCoverage(_ coverage: InotifyCoverage, pollInterval: Duration, logger: Logger) {
        guard let path = coverage.refusedPaths.first else {
            logger.notice(
                "inotify watches are in place for every lineage again: polling stopped",
                metadata: ["certreload_code": "inotify-watches-restored", "MESSAGE_ID": "\(MessageID.inotifyLimit)"])
            return
        }
        let (message, fix) = InotifyLimits.watchLimitMessage(
            path: path, needed: coverage.needed, inPlace: coverage.inPlace, polled: Array(coverage.unwatched),
            pollInterval: pollInterval)
        logger.error(
            "\(message). Fix: \(fix)",
            metadata: [
                "certreload_code": "\(InotifyLimits.Kind.watches.code)", "MESSAGE_ID": "\(MessageID.inotifyLimit)",
                "certreload_path": "\(path)", "certreload_user": "\(Account.current().name)",
            ])
    }
}

/// SIGHUP, SIGTERM and SIGINT as `WatchEvent`s (DispatchSource; the default actions are
/// ignored while it exists).
final class SignalEvents: @unchecked Sendable {
    // @unchecked Sendable: `sources` is written in init only; DispatchSource is thread-safe.
    private var sources: [any DispatchSourceSignal] = []

    init(continuation: AsyncStream<WatchEvent>.Continuation) {
        // A queue of its own, not `.global()` (whose threads start libdispatch's 1 s monitor).
        let queue = DispatchQueue(label: "certreload.signals")
        for (number, event) in [(SIGHUP, WatchEvent.reloadConfiguration), (SIGTERM, .stop), (SIGINT, .stop)] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(event) }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
