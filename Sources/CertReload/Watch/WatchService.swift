public import Logging
import Synchronization
internal import CCertReloadShims.Memory
internal import CCertReloadShims.Executor

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `certreload watch`: follows every configured lineage and reloads a target once its
/// lineage has settled on a new, consistent certificate that passes the target's check.
///
/// `run()` wires inotify, signals, timers and systemd's notify socket to the decision loop
/// `run(events:runner:hooks:)`, which tests drive directly. Targets given as cert/key
/// files (not certbot lineages) are not followed.
public struct WatchService: Sendable {
    public var configuration: Configuration
    public var logger: Logger
    /// First retry delay after a failed reload or verify; it doubles up to `backoffMax`.
    public var backoffInitial: Duration = .seconds(1)
    public var backoffMax: Duration = .seconds(300)
    /// How long a reload in flight may take to finish after SIGTERM or SIGHUP.
    public var shutdownGrace: Duration = .seconds(10)
    /// Reads the configuration again (SIGHUP, or the file changed).
    var loadConfiguration: @Sendable (String) throws -> Configuration = { path in
        try ConfigurationLoader.load(path: path)
    }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - The decision loop

    /// Runs until `.stop` or the end of `events`. Each configuration runs as one generation:
    /// a task per target (reload, verify, back off) and, while a lineage changes, a task for
    /// its settle window.
    func run(events: AsyncStream<WatchEvent>, runner: any WatchTargetRunner, hooks: WatchHooks) async {
        var configuration = self.configuration
        var configSignature = ConfigSignature(path: configuration.path)
        let status = WatchStatus(publish: hooks.status)
        var iterator = events.makeAsyncIterator()
        var first = true
        while true {
            let generation = await WatchGeneration.make(configuration: configuration, status: status, logger: logger)
            hooks.watchLineages(configuration)
            let next: Configuration? = await withTaskGroup(of: GenerationChild.self) { group in
                // The workers, in a group of their own so that a grace period can cancel them.
                // A lineage has a task only while it settles (`generation.changed`): an idle
                // lineage costs its slot, not a parked task (whose task allocator kept the ~5 KiB
                // high-water mark of its deepest settle window: 54 MiB at 10,000 lineages).
                group.addTask {
                    await withDiscardingTaskGroup { workers in
                        for slot in generation.targets {
                            workers.addTask { await self.serveTarget(slot, in: generation, runner: runner) }
                        }
                        for await slot in generation.followers {
                            workers.addTask { await self.followLineage(slot, in: generation) }
                        }
                    }
                    return .workers
                }
                group.addTask { [isFirst = first] in
                    guard await generation.firstPassDone.wait() else { return .ready }
                    if !isFirst { self.logger.notice("configuration reloaded from \(generation.configuration.path)") }
                    hooks.ready()
                    hooks.status(status.line)
                    return .ready
                }
                // Free memory back to the system a moment after a burst of checks (the first
                // pass, a recheck, a renewal): malloc keeps what the parallel check freed in its
                // per-thread arenas (at 1,000 lineages 14 of 24 MiB), and only trimming returns
                // it. Waits on a bell, not a timer: idle, it never wakes.
                group.addTask {
                    while await generation.memoryBell.wait(), !generation.isStopping {
                        await Pause.for(.seconds(1))
                        _ = generation.memoryBell.consume()
                        if generation.isStopping { break }
                        releaseFreeMemory()
                    }
                    return .ready
                }
                // Expiry warnings while nothing changes: the only timer besides the watchdog.
                group.addTask {
                    let clock = ContinuousClock()
                    while !generation.isStopping {
                        guard await generation.stopBell.wait(until: clock.now.advanced(by: generation.timing.recheck)) == false,
                            !Task.isCancelled
                        else { break }
                        for slot in generation.targets { slot.wantCheck() }
                        generation.changedAll()
                    }
                    return .ready
                }
                var next: Configuration?
                loop: while let event = await iterator.next() {
                    switch event {
                    case .lineageChanged(let name):
                        generation.changed(name)
                    case .attributesChanged(let name):
                        for slot in generation.targets where slot.target.lineages.contains(name) { slot.wantCheck() }
                        generation.changed(name)
                    case .rescan:
                        generation.changedAll()
                    case .recheck:
                        for slot in generation.targets { slot.wantCheck() }
                        generation.changedAll()
                    case .configurationChanged, .reloadConfiguration:
                        let signature = ConfigSignature(path: configuration.path)
                        if event == .configurationChanged && signature == configSignature { continue loop }
                        configSignature = signature
                        hooks.reloading()
                        do {
                            next = try loadConfiguration(configuration.path)
                            break loop
                        } catch {
                            logger.error(
                                "configuration reload refused, the running configuration stays: \(error)",
                                metadata: ["certreload_code": "config-reload-refused", "certreload_path": "\(configuration.path)"])
                            hooks.ready()
                        }
                    case .stop:
                        hooks.stopping()
                        break loop
                    }
                }
                // Stop this generation: no new work; a reload in flight gets the grace period.
                generation.stop()
                group.addTask { [grace = shutdownGrace] in
                    await Pause.for(grace)
                    return .grace
                }
                while let child = await group.next(), child == .ready {}
                group.cancelAll()
                return next
            }
            guard let next else { return }
            configuration = next
            first = false
            status.keep(
                lineages: Set(next.targets.flatMap(\.lineages)), targets: Set(next.targets.map(\.name)))
        }
    }

    /// One lineage that changed: let it settle, publish the consistent snapshot and wake its
    /// targets; report a set that stays half-updated past settle-max once. Started by
    /// `generation.changed`; ends when a window closes with no change since (a change after
    /// that starts another), so what is remembered between windows lives in the slot.
    private func followLineage(_ slot: LineageSlot, in generation: WatchGeneration) async {
        repeat {
            guard let next = await settle(slot, in: generation, after: slot.follow) else { return }
            slot.follow = next
        } while !slot.releaseFollower() && !generation.isStopping
    }

    /// What `followLineage` remembers between settle windows (kept in the lineage's slot).
    struct FollowState: Sendable {
        var lastGood: LineageSnapshot?
        /// The lineage's staying half-updated has been reported.
        var reported: Bool
    }

    /// One settle window of `followLineage` and what follows it; nil when the generation stops.
    private func settle(_ slot: LineageSlot, in generation: WatchGeneration, after state: FollowState) async -> FollowState? {
        var logger = self.logger
        logger[metadataKey: "certreload_lineage"] = "\(slot.name)"
        var state = state
        let window = SettleWindow(settle: generation.timing.settle, settleMax: generation.timing.settleMax)
        let result = await window.wait(
            changes: slot.changes, inspect: { await LineageSnapshot.inspected(slot.source) },
            shouldStop: { generation.isStopping })
        switch result {
        case .stopped:
            return nil
        case .consistent(let snapshot):
            if state.reported { logger.notice("lineage \(slot.name) is consistent again: \(snapshot.summary)") }
            state.reported = false
            generation.status.lineage(slot.name, consistent: true)
            if let previous = state.lastGood, previous.sha256 != snapshot.sha256 {
                logger.notice(
                    "lineage \(slot.name) changed: version \(previous.version.map(String.init) ?? "?") → \(snapshot.version.map(String.init) ?? "?")",
                    metadata: ["certreload_code": "lineage-changed"])
                if let before = previous.notAfter, let after = snapshot.notAfter, after < before {
                    logger.error(
                        "lineage \(slot.name): the certificate now linked expires EARLIER than the one before (notAfter \(WatchStatus.clockTime(after)), was \(WatchStatus.clockTime(before))): a failed renewal may have pointed the links back at an old version",
                        metadata: [
                            "certreload_code": "not-after-backwards", "MESSAGE_ID": "\(MessageID.notAfterBackwards)",
                            "certreload_path": "\(slot.source.path)",
                        ])
                }
            }
            state.lastGood = snapshot
            slot.snapshot = snapshot
            for target in generation.targets where target.target.lineages.contains(slot.name) { target.wake.ring() }
        case .inconsistent(let snapshot):
            slot.snapshot = snapshot
            generation.status.lineage(slot.name, consistent: false)
            if !state.reported {
                state.reported = true
                let problem = snapshot.problems.first
                logger.error(
                    "lineage \(slot.name) is still inconsistent after \(generation.timing.settleMax) (\(snapshot.summary)): not reloading its targets; still watching",
                    metadata: [
                        "certreload_code": "\(problem?.code.rawValue ?? "inconsistent")",
                        "MESSAGE_ID": "\(MessageID.inconsistent)", "certreload_path": "\(slot.source.path)",
                    ])
            }
        }
        return state
    }

    /// One target: when woken (its lineage settled, a recheck, a retry), reload it if the
    /// certificate on disk is not the one recorded as deployed and verified.
    private func serveTarget(_ slot: TargetSlot, in generation: WatchGeneration, runner: any WatchTargetRunner) async {
        var logger = self.logger
        logger[metadataKey: "certreload_target"] = "\(slot.target.name)"
        let target = slot.target
        let configuration = generation.configuration
        var firstPass = true
        var backoff: Duration?
        var accessProblems: [String: Problem]?
        // Findings of the last failed run: a retry that finds the same logs nothing new.
        // Access and expiry are logged by checkAccessAndExpiry, as transitions and reminders.
        let outcomeLog = OutcomeLog(logger: logger, skippingCodes: ProblemCode.access.union([.expiringSoon, .expired]))
        var loggedFindings: Set<String> = []
        let clock = ContinuousClock()
        /// When a failed reload or verify is tried again.
        var retryAt: ContinuousClock.Instant?
        // The record as this daemon last wrote or meant to write it. `unsaved`: one the state
        // directory refused (read-only, full, gone with its parent): it stands for the file
        // and is written again with backoff, so the reload is neither lost nor repeated.
        let store = StateStore(directory: configuration.stateDirectory)
        var lastRecord: TargetState?
        var unsaved: TargetState?
        var saveDelay: Duration?
        var saveAt: ContinuousClock.Instant?
        var saveError: String?
        // Once a record is written again, a later failure is news: log it again.
        func forgetUnwritable() {
            loggedFindings = loggedFindings.filter { !$0.hasPrefix(ProblemCode.stateUnwritable.rawValue + "\u{1f}") }
        }
        func save(_ record: TargetState, why: String) {
            do {
                try store.save(record)
                forgetUnwritable()
                if unsaved != nil {
                    logger.notice(
                        "\(target.name): recorded \(record.deployedSHA256.map { "sha256 \($0.prefix(16))…" } ?? "the state") in \(store.path(for: target.name)) (\(why)): the state directory is writable again; nothing was reloaded for it",
                        metadata: ["certreload_code": "state-recorded", "certreload_path": "\(store.directory)"])
                }
                unsaved = nil
                (saveDelay, saveAt, saveError) = (nil, nil, nil)
            } catch {
                unsaved = record
                let delay = saveDelay.map { min($0 * 2, backoffMax) } ?? backoffInitial
                (saveDelay, saveAt) = (delay, clock.now.advanced(by: delay))
                let problem = store.unwritable(error, target: target.name)
                if saveError != problem.message {
                    logger.error(
                        "\(target.name): [\(problem.code.rawValue)] \(problem.message). Kept in memory and written again every \(DurationText.seconds(delay)) at first (doubling up to \(DurationText.seconds(backoffMax))) until it succeeds. Fix: \(problem.fix ?? "")",
                        metadata: [
                            "certreload_code": "\(problem.code.rawValue)", "certreload_path": "\(store.directory)",
                            "certreload_user": "\(problem.user ?? "")",
                        ])
                }
                saveError = problem.message
            }
        }
        while true {
            if !firstPass {
                let rang = await slot.wake.wait(until: [retryAt, saveAt].compactMap { $0 }.min())
                if generation.isStopping || Task.isCancelled { return }
                let now = clock.now
                if rang {
                    // The lineage changed again (or a recheck): start over.
                    backoff = nil
                    retryAt = nil
                }
                if let record = unsaved, rang || saveAt.map({ now >= $0 }) == true {
                    save(record, why: "retried")
                }
                guard rang || retryAt.map({ now >= $0 }) == true else { continue }  // only the record was due
                retryAt = nil
            }
            defer {
                if firstPass {
                    firstPass = false
                    generation.firstPassFinished()
                }
            }
            if slot.takeCheckWanted() {
                await checkAccessAndExpiry(target, configuration: configuration, runner: runner, logger: logger, known: &accessProblems)
                generation.memoryBell.ring()
            }
            let snapshots = slot.lineages.map(\.snapshot)
            guard !snapshots.isEmpty, snapshots.allSatisfy(\.consistent), let sha = snapshots[0].sha256 else {
                backoff = nil
                continue
            }
            var state = store.load(target.name)
            if let record = unsaved {
                state = record
            } else if state == TargetState(target: target.name), let record = lastRecord, record != state {
                // The state file is gone while this daemon runs (the state directory deleted):
                // write again what it knows rather than reload every server once more.
                save(record, why: "the state file had gone")
                logger.warning(
                    "\(target.name): the state file \(store.path(for: target.name)) was gone (was \(store.directory) deleted while certreload ran?): \(unsaved == nil ? "wrote" : "keeps trying to write") the record this daemon holds (\(record.deployedSHA256.map { "deployed sha256 \($0.prefix(16))…" } ?? "")) instead of reloading the server again",
                    metadata: ["certreload_code": "state-missing", "certreload_path": "\(store.directory)"])
                state = record
            } else if state != TargetState(target: target.name) {
                lastRecord = state
            }
            if state.deployedSHA256 == sha && (target.verify.isEmpty || state.verifiedSHA256 == sha) {
                backoff = nil
                generation.status.target(target.name, failing: false)
                continue
            }
            // After a renewal: deploy. At start, or when the record says it was deployed but
            // not yet seen served: reload only if the server does not already serve it.
            let action: TargetPipeline.Action =
                state.deployedSHA256 != sha && !firstPass ? .deploy : .reload(force: false, dryRun: false)
            // In a child task: the pipeline's deep async frames then live in the child's task
            // allocator, freed when it ends; run here, their slabs stay with this task for the
            // daemon's whole life (heaptrack: ~9 KiB per target).
            let outcome = await withTaskGroup(of: TargetOutcome.self) { group in
                group.addTask { [logger] in await runner.run(action, target: target, configuration: configuration, logger: logger) }
                return await group.next()!
            }
            generation.memoryBell.ring()
            loggedFindings = outcomeLog.log(outcome, alreadyLogged: loggedFindings)
            if let record = outcome.record {
                lastRecord = record
                if outcome.recordSaved {
                    forgetUnwritable()
                    unsaved = nil
                    (saveDelay, saveAt, saveError) = (nil, nil, nil)
                } else if unsaved == nil || unsaved != record {
                    // Already logged as state-unwritable by the outcome: retry with backoff.
                    unsaved = record
                    let delay = backoffInitial
                    (saveDelay, saveAt) = (delay, clock.now.advanced(by: delay))
                    saveError = outcome.problems.first { $0.code == .stateUnwritable }?.message
                }
            }
            if generation.isStopping { return }  // cut short by the stop: no retry to announce
            if outcome.succeeded {
                backoff = nil
                generation.status.target(target.name, failing: false)
                if outcome.status == .deployed { generation.status.reloaded(target.name) }
                logger.info("\(target.name): \(outcome.status.rawValue) (\(snapshots[0].summary))")
            } else {
                let delay = backoff.map { min($0 * 2, backoffMax) } ?? backoffInitial
                backoff = delay
                retryAt = clock.now.advanced(by: delay)
                generation.status.target(target.name, failing: true)
                let why = outcome.problems.first { $0.severity == .error }.map { "[\($0.code.rawValue)] \($0.message)" } ?? "failed"
                logger.error(
                    "\(target.name): \(why); retrying in \(delay) unless the lineage changes first",
                    metadata: ["certreload_code": "\(outcome.problems.first?.code.rawValue ?? "failed")"])
            }
        }
    }

    /// The target's full check as its user: reports files becoming unreadable and readable
    /// again, and certificates about to expire.
    private func checkAccessAndExpiry(
        _ target: TargetConfiguration, configuration: Configuration, runner: any WatchTargetRunner, logger: Logger,
        known: inout [String: Problem]?
    ) async {
        let report: CheckReport
        do {
            report = try await runner.check(target: target, configuration: configuration, logger: logger)
        } catch {
            logger.error("\(target.name): check failed: \(error)")
            return
        }
        var now: [String: Problem] = [:]
        for lineage in report.lineages {
            for problem in lineage.problems {
                if ProblemCode.access.contains(problem.code) {
                    now["\(lineage.name) \(problem.path ?? "")"] = problem
                } else if problem.code == .expiringSoon || problem.code == .expired {
                    logger.warning(
                        "\(problem.message)",
                        metadata: [
                            "certreload_code": "\(problem.code.rawValue)", "MESSAGE_ID": "\(MessageID.expiring)",
                            "certreload_lineage": "\(lineage.name)",
                        ])
                }
            }
        }
        let before = known ?? [:]
        func access(_ level: Logger.Level, _ message: String, code: String, id: String, _ problem: Problem) {
            logger.log(
                level: level, "\(message)",
                metadata: [
                    "certreload_code": "\(code)", "MESSAGE_ID": "\(id)",
                    "certreload_path": "\(problem.path ?? "")", "certreload_user": "\(report.account.name)",
                ])
        }
        for (key, problem) in now where before[key] == nil {
            access(.error, problem.message, code: problem.code.rawValue, id: MessageID.becameUnreadable, problem)
        }
        if known != nil {
            for (key, problem) in before where now[key] == nil {
                access(.notice, "\(problem.path ?? key) is readable to \(report.account.name) again", code: "readable-again", id: MessageID.readableAgain, problem)
            }
        }
        known = now
    }
}

/// The children of one generation's task group.
enum GenerationChild: Sendable {
    /// `ready` also stands for the other helpers that end with the generation.
    case workers, ready, grace
}

/// Everything one configuration runs with.
final class WatchGeneration: Sendable {
    let configuration: Configuration
    let timing: WatchTiming
    let lineages: [String: LineageSlot]
    let targets: [TargetSlot]
    let status: WatchStatus
    let firstPassDone = Doorbell()
    /// Rung once when the generation stops.
    let stopBell = Doorbell()
    /// Rung after a check or a pipeline run: free memory back to the system soon.
    let memoryBell = Doorbell()
    private let stopping = Atomic<Bool>(false)
    private let firstPassRemaining: Atomic<Int>
    /// The lineages that need a settle task, for the workers' group to start.
    let followers: AsyncStream<LineageSlot>
    private let followersContinuation: AsyncStream<LineageSlot>.Continuation

    /// The generation, with a first look at every lineage taken off the cooperative pool on
    /// both cores (at 10,000 lineages that look is seconds of file reads and OpenSSL).
    static func make(configuration: Configuration, status: WatchStatus, logger: Logger) async -> WatchGeneration {
        let directory = CertbotDirectory(configuration.certbotDirectory)
        var names: [String] = []
        var seen = Set<String>()
        for name in configuration.targets.flatMap(\.lineages) where seen.insert(name).inserted { names.append(name) }
        let sources = names.map { LineageSource.certbot(liveDirectory: Paths.join(directory.liveDirectory, $0)) }
        let looks = await Blocking.run { _ in sources.parallelMap { LineageSnapshot.inspect($0) } }
        var slots: [String: LineageSlot] = [:]
        for (index, name) in names.enumerated() {
            slots[name] = LineageSlot(name: name, source: sources[index], snapshot: looks[index])
        }
        return WatchGeneration(configuration: configuration, lineages: slots, status: status, logger: logger)
    }

    /// `lineages` holds a slot for every lineage every target names (`make` looked at each).
    private init(configuration: Configuration, lineages: [String: LineageSlot], status: WatchStatus, logger: Logger) {
        (followers, followersContinuation) = AsyncStream.makeStream(of: LineageSlot.self)
        self.configuration = configuration
        self.timing = WatchTiming(configuration.watch)
        self.status = status
        var targets: [TargetSlot] = []
        for target in configuration.targets {
            guard !target.lineages.isEmpty else {
                logger.warning(
                    "target \(target.name) names cert/key files, not a certbot lineage: watch does not follow it",
                    metadata: ["certreload_target": "\(target.name)"])
                continue
            }
            let slots = target.lineages.map { lineages[$0]! }
            targets.append(TargetSlot(target: target, lineages: slots))
        }
        self.lineages = lineages
        self.targets = targets
        firstPassRemaining = Atomic(targets.count)
        status.watching(lineages: lineages.count, targets: targets.count)
        for slot in lineages.values { status.lineage(slot.name, consistent: slot.snapshot.consistent) }
        if targets.isEmpty { firstPassDone.ring() }
        for slot in lineages.values.sorted(by: { $0.name < $1.name }) where !slot.snapshot.consistent {
            logger.warning(
                "lineage \(slot.name) is not consistent at start (\(slot.snapshot.summary)): waiting for it to settle",
                metadata: ["certreload_lineage": "\(slot.name)"])
            changed(slot.name)
        }
    }

    /// The lineage changed: ring its bell, and start its settle task unless one runs.
    func changed(_ name: String) {
        guard let slot = lineages[name] else { return }
        slot.changes.ring()
        if !isStopping && slot.claimFollower() { followersContinuation.yield(slot) }
    }

    /// Every lineage changed (a rescan, a recheck).
    func changedAll() {
        for name in lineages.keys { changed(name) }
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    func stop() {
        stopping.store(true, ordering: .releasing)
        stopBell.ring()
        memoryBell.ring()
        followersContinuation.finish()
        for slot in lineages.values { slot.changes.ring() }
        for slot in targets { slot.wake.ring() }
    }

    func firstPassFinished() {
        if firstPassRemaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { firstPassDone.ring() }
    }
}

/// A lineage being followed: its change bell and its last settled look.
final class LineageSlot: Sendable {
    let name: String
    let source: LineageSource
    let changes = Doorbell()
    private struct State {
        var snapshot: LineageSnapshot
        var follow: WatchService.FollowState
        /// A settle task runs for this lineage.
        var following = false
    }
    private let state: Locked<State>

    init(name: String, source: LineageSource, snapshot: LineageSnapshot) {
        self.name = name
        self.source = source
        state = Locked(State(
            snapshot: snapshot, follow: WatchService.FollowState(lastGood: snapshot.consistent ? snapshot : nil, reported: false)))
    }

    var snapshot: LineageSnapshot {
        get { state.withLock { $0.snapshot } }
        set { state.withLock { $0.snapshot = newValue } }
    }

    var follow: WatchService.FollowState {
        get { state.withLock { $0.follow } }
        set { state.withLock { $0.follow = newValue } }
    }

    /// True when the caller is to start the settle task (none runs).
    func claimFollower() -> Bool {
        state.withLock { state in
            defer { state.following = true }
            return !state.following
        }
    }

    /// The settle task's last word: true when it may end (no change came since its window
    /// closed). Decided under the same lock as `claimFollower`, after the ring, so a change
    /// either keeps this task going or starts the next one, never neither.
    func releaseFollower() -> Bool {
        state.withLock { state in
            if changes.isRung { return false }
            state.following = false
            return true
        }
    }
}

/// A target being served: its wake-up bell and whether a full check is wanted.
final class TargetSlot: Sendable {
    let target: TargetConfiguration
    let lineages: [LineageSlot]
    let wake = Doorbell()
    private let checkWanted = Atomic<Bool>(true)

    init(target: TargetConfiguration, lineages: [LineageSlot]) {
        self.target = target
        self.lineages = lineages
    }

    func wantCheck() {
        checkWanted.store(true, ordering: .releasing)
        wake.ring()
    }

    func takeCheckWanted() -> Bool { checkWanted.exchange(false, ordering: .acquiringAndReleasing) }
}

/// Whether the configuration file changed: inode, size and modification time.
struct ConfigSignature: Equatable {
    var values: [Int64]

    init(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            values = []
            return
        }
        values = [
            Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
        ]
    }
}

/// Returns the free memory of every malloc arena to the system (glibc's malloc_trim).
func releaseFreeMemory() { certreload_release_free_memory() }

extension WatchService {
    /// The daemon's malloc policy, set first thing by `certreload watch`: one arena per CPU
    /// (certreload_memory.h says why; MALLOC_ARENA_MAX in the environment wins).
    public static func limitMallocArenas() { certreload_limit_malloc_arenas(certreload_cpu_count()) }
}
