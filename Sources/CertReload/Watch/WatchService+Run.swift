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
        let inotify = try InotifySource(
            certbotDirectory: configuration.certbotDirectory, configPath: configuration.path, continuation: continuation)
        let signals = SignalEvents(continuation: continuation)
        defer {
            signals.cancel()
            inotify.cancel()
        }
        let logger = self.logger
        let hooks = WatchHooks(
            ready: { notifier.notify("READY=1") },
            reloading: { notifier.reloading() },
            stopping: {
                logger.notice("stopping: a reload in flight may finish")
                notifier.notify("STOPPING=1")
            },
            status: { line in notifier.notify("STATUS=\(line)") },
            watchLineages: { configuration in
                inotify.watch(
                    certbotDirectory: configuration.certbotDirectory, lineages: configuration.targets.flatMap(\.lineages))
            })
        let lineageCount = Set(configuration.targets.flatMap(\.lineages)).count
        logger.notice(
            "watching \(lineageCount) lineage(s) in \(configuration.certbotDirectory) for \(configuration.targets.count) target(s); configuration \(configuration.path)")
        // The watchdog rides a Dispatch timer of its own, not a task: it keeps pinging even if
        // something did block the cooperative pool (nothing should: blocking calls run on
        // threads of their own), and it costs one wake-up per interval.
        let watchdog = SystemdNotifier.watchdogInterval().map { interval in
            let timer = DispatchSource.makeTimerSource(queue: .global())
            let nanoseconds = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
            timer.schedule(deadline: .now(), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(100))
            timer.setEventHandler { notifier.notify("WATCHDOG=1") }
            timer.resume()
            return timer
        }
        defer { watchdog?.cancel() }
        await run(events: events, runner: PipelineRunner(), hooks: hooks)
    }
}

/// SIGHUP, SIGTERM and SIGINT as `WatchEvent`s (DispatchSource; the default actions are
/// ignored while it exists).
final class SignalEvents: @unchecked Sendable {
    // @unchecked Sendable: `sources` is written in init only; DispatchSource is thread-safe.
    private var sources: [any DispatchSourceSignal] = []

    init(continuation: AsyncStream<WatchEvent>.Continuation) {
        for (number, event) in [(SIGHUP, WatchEvent.reloadConfiguration), (SIGTERM, .stop), (SIGINT, .stop)] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(event) }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
