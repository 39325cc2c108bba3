import Logging

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct WatchTestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with `WatchTestTimeout` after `seconds`.
func within<T: Sendable>(
    _ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw WatchTestTimeout(what: what) }
        return value
    }
}

/// A queue of values a test awaits one by one, with a timeout.
final class Mailbox<Value: Sendable>: Sendable {
    private let state = Locked<(values: [Value], all: [Value])>(([], []))
    private let bell = Doorbell()

    func post(_ value: Value) {
        state.withLock {
            $0.values.append(value)
            $0.all.append(value)
        }
        bell.ring()
    }

    /// Everything ever posted.
    var all: [Value] { state.withLock { $0.all } }

    /// The next value, or nil after `seconds`.
    func next(within seconds: Double) async -> Value? {
        let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
        while true {
            let value: Value? = state.withLock { $0.values.isEmpty ? nil : $0.values.removeFirst() }
            if let value { return value }
            guard await bell.wait(until: deadline) else {
                return state.withLock { $0.values.isEmpty ? nil : $0.values.removeFirst() }
            }
        }
    }
}

/// A reload the fake runner was asked for, with what was on disk at that moment.
struct RunnerCall: Sendable {
    var target: String
    var action: TargetPipeline.Action
    var snapshot: LineageSnapshot
    var at: ContinuousClock.Instant
}

/// The real pipeline (check, already-serving, reload, verify, record) with a counting fake
/// in place of the server's reload: each reload is recorded with what was on disk at that
/// moment. Behaviour per target: fail the first N reloads, take some time.
final class CountingRunner: WatchTargetRunner {
    struct Behaviour: Sendable {
        var failures = 0
        var delay: Duration = .zero
    }

    let calls = Mailbox<RunnerCall>()
    /// Target names, as each reload returns.
    let finished = Mailbox<String>()
    private let behaviours: Locked<[String: Behaviour]>

    init(_ behaviours: [String: Behaviour] = [:]) {
        self.behaviours = Locked(behaviours)
    }

    func run(
        _ action: TargetPipeline.Action, target: TargetConfiguration, configuration: Configuration, logger: Logger
    ) async -> TargetOutcome {
        var pipeline = TargetPipeline(configuration: configuration, target: target, logger: logger)
        pipeline.reloadTargetOverride = CountingReload(runner: self, target: target, action: action, configuration: configuration)
        return await pipeline.run(action)
    }

    /// The behaviour for this reload of `target`, using up one failure.
    fileprivate func take(_ target: String) -> Behaviour {
        behaviours.withLock { all -> Behaviour in
            let current = all[target] ?? Behaviour()
            all[target]?.failures = max(0, current.failures - 1)
            return current
        }
    }
}

/// What the pipeline calls instead of a server: records the call, fails or waits as told.
struct CountingReload: ReloadTarget {
    let runner: CountingRunner
    let target: TargetConfiguration
    let action: TargetPipeline.Action
    let configuration: Configuration

    var summary: String { "counting fake for \(target.name)" }

    func reload(context: ReloadContext) async throws(ReloadError) -> String {
        let source = LineageSource.certbot(liveDirectory: configuration.certbotDirectory + "/live/" + target.lineages[0])
        runner.calls.post(RunnerCall(target: target.name, action: action, snapshot: LineageSnapshot.inspect(source), at: .now))
        let behaviour = runner.take(target.name)
        if behaviour.delay > .zero { try? await Task.sleep(for: behaviour.delay) }
        defer { runner.finished.post(target.name) }
        if behaviour.failures > 0 { throw ReloadError(.reloadFailed, "fake reload failed") }
        return "counted"
    }
}

/// Collects log messages so that a test can count what a person would see.
struct CollectingLogHandler: LogHandler {
    let entries: Mailbox<String>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        let code = metadata?["certreload_code"].map { "[\($0)] " } ?? ""
        entries.post("\(level) \(code)\(message)")
    }
}

/// A certbot directory with one CA and a few pre-made versions of a lineage, and a
/// configuration whose targets use it.
final class WatchFixture: @unchecked Sendable {
    // @unchecked Sendable: fields are set once in init; the directory is used by one test.
    let root: String
    let writer: CertbotLayoutWriter
    let ca: TestCA
    let state: String
    /// Pre-generated (certificate, key) pairs, cycled through renewals.
    let versions: [(certificate: Certificate, key: PrivateKey)]

    init(lineage: String = "example.com", versionCount: Int = 3) throws {
        root = try FileTree.makeTemporaryDirectory(prefix: "certreload-watch")
        writer = try CertbotLayoutWriter(configDirectory: root + "/letsencrypt")
        state = root + "/state"
        ca = try TestCA()
        let now = Int64(time(nil))
        var versions: [(Certificate, PrivateKey)] = []
        for index in 0..<versionCount {
            let key = try CertificateFactory.makeKey(.ecdsaP256)
            // Later versions expire later, like real renewals.
            let leaf = try ca.issue(names: [lineage], key: key, notBefore: now - 3600, notAfter: now + Int64(30 + index) * 86_400)
            versions.append((leaf, key))
        }
        self.versions = versions
    }

    var certbotDirectory: String { writer.configDirectory }

    /// Writes archive files for version N (1-based) and links all four at it.
    func issue(_ lineage: String = "example.com", version: Int, link: Bool = true) throws {
        let pair = versions[(version - 1) % versions.count]
        try writer.writeVersion(lineage: lineage, version: version, certificate: pair.certificate, chain: [ca.intermediate], key: pair.key)
        if link { try writer.linkAll(lineage: lineage, toVersion: version) }
    }

    func sha(version: Int) -> String { versions[(version - 1) % versions.count].certificate.sha256 }

    func configuration(
        targets: [String: [String]] = ["web": ["example.com"]], settle: Double = 0.2, settleMax: Double = 1
    ) -> Configuration {
        var configuration = Configuration(path: root + "/certreload.toml")
        configuration.certbotDirectory = certbotDirectory
        configuration.stateDirectory = state
        configuration.watch = WatchSettings(settle: settle, settleMax: settleMax, recheck: 3600)
        for (name, lineages) in targets.sorted(by: { $0.key < $1.key }) {
            var target = TargetConfiguration(
                name: name, location: ConfigLocation(file: "t", line: 1, key: name),
                reload: .command(argv: ["/bin/true"], timeout: 5))
            target.lineages = lineages
            configuration.targets.append(target)
        }
        return configuration
    }

    func remove() { FileTree.remove(root) }

    /// Writes `certreload.toml` in the fixture: this certbot and state directory, then `body`
    /// (settings and targets). Returns its path.
    func writeConfig(_ body: String) throws -> String {
        let path = root + "/certreload.toml"
        try CertbotLayoutWriter.write(
            path, "certbot-dir = \"\(certbotDirectory)\"\nstate-dir = \"\(state)\"\n" + body, mode: 0o644)
        return path
    }
}

/// A running decision loop fed by a test's events.
final class WatchRun: Sendable {
    let events: AsyncStream<WatchEvent>
    let continuation: AsyncStream<WatchEvent>.Continuation
    let hooks = Mailbox<String>()
    let logs = Mailbox<String>()

    init() {
        (events, continuation) = AsyncStream.makeStream(of: WatchEvent.self)
    }

    var watchHooks: WatchHooks {
        WatchHooks(
            ready: { [hooks] in hooks.post("READY=1") },
            reloading: { [hooks] in hooks.post("RELOADING=1") },
            stopping: { [hooks] in hooks.post("STOPPING=1") },
            status: { [hooks] line in hooks.post("STATUS=\(line)") })
    }

    var logger: Logger {
        var logger = Logger(label: "watch-test") { [logs] _ in CollectingLogHandler(entries: logs) }
        logger.logLevel = .debug
        return logger
    }

    /// Waits for a hook message with this prefix (others are skipped).
    func hook(_ prefix: String, within seconds: Double = 10) async -> String? {
        let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
        while ContinuousClock.now < deadline {
            guard let message = await hooks.next(within: Double((deadline - .now).components.seconds) + 0.5) else { return nil }
            if message.hasPrefix(prefix) { return message }
        }
        return nil
    }

    /// Tells the loop about a change to the lineage, the way inotify would.
    func changed(_ lineage: String = "example.com") { continuation.yield(.lineageChanged(lineage)) }
}

extension WatchRun {
    /// A watch service logging into this run, with test-sized backoff (from 100 ms up to
    /// `backoffMax`) and a 5 s shutdown grace.
    func service(_ configuration: Configuration, backoffMax: Duration) -> WatchService {
        var service = WatchService(configuration: configuration, logger: logger)
        service.backoffInitial = .milliseconds(100)
        service.backoffMax = backoffMax
        service.shutdownGrace = .seconds(5)
        return service
    }
}
