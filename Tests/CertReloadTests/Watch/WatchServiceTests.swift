import Logging
import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs the decision loop for the length of `body`, then stops it with `.stop`.
/// `hooks` defaults to the run's own (notify and status recorded, no inotify).
func withWatch(
    _ service: WatchService, runner: any WatchTargetRunner, run: WatchRun, hooks: WatchHooks? = nil,
    _ body: @Sendable () async throws -> Void
) async throws {
    let hooks = hooks ?? run.watchHooks
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await service.run(events: run.events, runner: runner, hooks: hooks) }
        do {
            try await body()
        } catch {
            run.continuation.yield(.stop)
            try await group.waitForAll()
            throw error
        }
        run.continuation.yield(.stop)
        try await group.waitForAll()  // bounded: the shutdown grace is 5 s
    }
}

@Suite("Watch: the decision loop")
struct WatchServiceTests {
    func service(_ configuration: Configuration, _ run: WatchRun) -> WatchService {
        run.service(configuration, backoffMax: .seconds(1))
    }

    @Test("on start a target without a record is verified-or-reloaded once, then READY=1")
    func startUpCatchUp() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            let call = try #require(await runner.calls.next(within: 10))
            #expect(call.action == .reload(force: false, dryRun: false))
            #expect(call.snapshot.sha256 == fixture.sha(version: 1))
            #expect(await run.hook("READY=1") != nil)
        }
        #expect(runner.calls.all.count == 1)
    }

    @Test("a target whose record matches the disk is left alone at start and on a no-op event")
    func reloadOnlyOnChange() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        var state = TargetState(target: "web")
        state.deployedSHA256 = fixture.sha(version: 1)
        state.verifiedSHA256 = fixture.sha(version: 1)
        try StateStore(directory: fixture.state).save(state)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            #expect(await run.hook("READY=1") != nil)
            run.changed()  // e.g. certbot touched the README
            // Waiting out the settle window is the feature under test.
            #expect(await runner.calls.next(within: 0.8) == nil)
        }
        #expect(runner.calls.all.isEmpty)
    }

    @Test("a renewal is deployed once, only after the lineage has been quiet for the settle window")
    func settleWindow() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(settle: 0.3), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            try fixture.issue(version: 2, link: false)
            // Events keep coming for a while: the window keeps restarting.
            var lastEvent = ContinuousClock.now
            for file in LineageFile.allCases {
                try await Task.sleep(for: .milliseconds(100))
                try fixture.writer.link(lineage: "example.com", file, toVersion: 2)
                run.changed()
                lastEvent = .now
            }
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.action == .deploy)
            #expect(call.snapshot.sha256 == fixture.sha(version: 2))
            #expect(call.snapshot.consistent)
            #expect(call.at - lastEvent >= .milliseconds(300))
            #expect(await runner.calls.next(within: 0.8) == nil)
        }
        #expect(runner.calls.all.count == 2)
    }

    @Test("a half-updated lineage is not reloaded; once consistent it is, once")
    func inconsistentThenConsistent() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(settle: 0.2, settleMax: 5), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            try fixture.issue(version: 2, link: false)
            try fixture.writer.link(lineage: "example.com", .cert, toVersion: 2)  // cert at 2, key at 1
            run.changed()
            #expect(await runner.calls.next(within: 1) == nil)
            for file in [LineageFile.privkey, .chain, .fullchain] {
                try fixture.writer.link(lineage: "example.com", file, toVersion: 2)
            }
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.action == .deploy)
            #expect(call.snapshot.version == 2)
            #expect(call.snapshot.consistent)
        }
        #expect(runner.calls.all.count == 2)
    }

    @Test("still inconsistent after settle-max: reported once, not reloaded, still watched")
    func settleMaxReportsOnce() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(settle: 0.1, settleMax: 0.4), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            try fixture.issue(version: 2, link: false)
            try fixture.writer.link(lineage: "example.com", .cert, toVersion: 2)
            run.changed()
            var reports = 0
            while let entry = await run.logs.next(within: 1.5) {
                if entry.contains("still inconsistent") { reports += 1 }
            }
            #expect(reports == 1)
            #expect(run.hooks.all.contains { $0.hasPrefix("STATUS=") && $0.contains("inconsistent: example.com") })
            // Still watching: the renewal completes and is deployed.
            try fixture.writer.linkAll(lineage: "example.com", toVersion: 2)
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.snapshot.version == 2)
        }
        let reports = run.logs.all.filter { $0.contains("still inconsistent") }
        #expect(reports.count == 1)
        #expect(reports.first?.contains("[key-mismatch]") == true || reports.first?.contains("[version-mismatch]") == true)
        #expect(runner.calls.all.count == 2)
        let consistent = runner.calls.all.allSatisfy { $0.snapshot.consistent }
        #expect(consistent)
    }

    @Test("a failed reload is retried with a doubling delay until it succeeds")
    func backoff() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner(["web": .init(failures: 3)])
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            var times: [ContinuousClock.Instant] = []
            for _ in 0..<4 {
                times.append(try #require(await runner.calls.next(within: 5)).at)
            }
            let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
            #expect(gaps[0] >= .milliseconds(100))
            #expect(gaps[1] >= .milliseconds(200))
            #expect(gaps[2] >= .milliseconds(400))
            #expect(gaps[2] < .seconds(2))
            #expect(await runner.calls.next(within: 1.2) == nil)  // succeeded: no more retries
        }
        #expect(runner.calls.all.count == 4)
        #expect(run.logs.all.contains { $0.contains("retrying in") })
    }

    @Test("a slow target does not delay another target on the same lineage")
    func slowTargetDoesNotDelayAnother() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner(["slow": .init(delay: .seconds(20))])
        let configuration = fixture.configuration(targets: ["slow": ["example.com"], "fast": ["example.com"]])
        try await withWatch(service(configuration, run), runner: runner, run: run) {
            var seen: Set<String> = []
            while seen.count < 2, let call = await runner.calls.next(within: 5) { seen.insert(call.target) }
            // The slow target's first reload is still in flight (20 s): renew meanwhile.
            try fixture.issue(version: 2)
            run.changed()
            let fast = try #require(await runner.calls.next(within: 10))
            #expect(fast.target == "fast")
            #expect(fast.action == .deploy)
            #expect(fast.snapshot.version == 2)
            #expect(!runner.finished.all.contains("slow"), "the fast target waited for the slow one")
        }
    }

    @Test("SIGHUP with a broken configuration keeps the old one; a good one replaces it")
    func reloadConfiguration() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let configuration = fixture.configuration()
        let path = configuration.path
        try CertbotLayoutWriter.write(path, "this is = = not toml\n", mode: 0o644)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(configuration, run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            run.continuation.yield(.reloadConfiguration)
            #expect(await run.hook("RELOADING=1") != nil)
            #expect(await run.hook("READY=1") != nil)
            #expect(run.logs.all.contains { $0.contains("[config-reload-refused]") })
            // The old configuration still works.
            try fixture.issue(version: 2)
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.target == "web")
            #expect(call.snapshot.version == 2)
            // A good configuration: a new target appears and gets its first pass.
            let text = """
                certbot-dir = "\(fixture.certbotDirectory)"
                state-dir = "\(fixture.state)"
                settle = 0.2
                settle-max = 1
                [target.mail]
                lineages = ["example.com"]
                reload = { command = ["/bin/true"] }
                """
            try CertbotLayoutWriter.write(path, text, mode: 0o644)
            run.continuation.yield(.reloadConfiguration)
            #expect(await run.hook("RELOADING=1") != nil)
            let mail = try #require(await runner.calls.next(within: 5))
            #expect(mail.target == "mail")
            #expect(await run.hook("READY=1") != nil)
        }
        #expect(run.hooks.all.contains("STOPPING=1"))
    }

    @Test("a change to a certificate that expires earlier than the one before is a loud error (and still deployed)")
    func notAfterBackwards() async throws {
        let fixture = try WatchFixture(versionCount: 3)  // version 4 reuses version 1's pair: it expires earlier than 3
        defer { fixture.remove() }
        try fixture.issue(version: 3)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            try fixture.issue(version: 4)
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.snapshot.version == 4)
        }
        let warnings = run.logs.all.filter { $0.contains("[not-after-backwards]") }
        #expect(warnings.count == 1)
        #expect(warnings.first?.hasPrefix("error") == true)
    }
}
