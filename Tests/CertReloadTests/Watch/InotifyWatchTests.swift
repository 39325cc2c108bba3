import Logging
import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The decision loop fed by the real inotify source.
func withInotifyWatch(
    _ fixture: WatchFixture, _ configuration: Configuration, runner: CountingRunner, run: WatchRun,
    _ body: @Sendable () async throws -> Void
) async throws {
    var service = WatchService(configuration: configuration, logger: run.logger)
    service.shutdownGrace = .seconds(5)
    let inotify = try InotifySource(
        certbotDirectory: fixture.certbotDirectory, configPath: configuration.path, continuation: run.continuation)
    defer { inotify.cancel() }
    var hooks = run.watchHooks
    hooks.watchLineages = { configuration in
        inotify.watch(certbotDirectory: configuration.certbotDirectory, lineages: configuration.targets.flatMap(\.lineages))
    }
    try await withWatch(service, runner: runner, run: run, hooks: hooks, body)
}

@Suite("Watch: inotify")
struct InotifyWatchTests {
    @Test("a lineage that does not exist at start is picked up when certbot creates it")
    func lineageAppears() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        let run = WatchRun()
        let runner = CountingRunner()
        try await withInotifyWatch(fixture, fixture.configuration(), runner: runner, run: run) {
            #expect(await run.hook("READY=1") != nil)
            #expect(run.logs.all.contains { $0.contains("not consistent at start") })
            try fixture.issue(version: 1)  // first issuance: directories, archive files, links
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.snapshot.version == 1)
            #expect(call.snapshot.consistent)
        }
    }

    @Test("a lineage deleted and re-created is followed again")
    func lineageRecreated() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withInotifyWatch(fixture, fixture.configuration(), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            FileTree.remove(fixture.writer.liveDirectory("example.com"))
            FileTree.remove(fixture.writer.archiveDirectory("example.com"))
            #expect(await runner.calls.next(within: 0.6) == nil)  // gone: nothing to reload
            try fixture.issue(version: 2)
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.snapshot.version == 2)
            #expect(call.action == .deploy)
            // And it is still watched after that.
            try fixture.issue(version: 3)
            let next = try #require(await runner.calls.next(within: 5))
            #expect(next.snapshot.version == 3)
        }
    }

    @Test("archive files becoming unreadable to the target's user, and readable again, are reported")
    func accessChanges() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let nobody = try Account.named("nobody")
        for path in [fixture.root, fixture.certbotDirectory, fixture.certbotDirectory + "/live", fixture.certbotDirectory + "/archive"] {
            chmod(path, 0o755)
        }
        chown(fixture.writer.archivePath("example.com", .privkey, version: 1), nobody.uid, nobody.gid)
        var configuration = fixture.configuration()
        configuration.targets[0].user = "nobody"
        let run = WatchRun()
        let runner = CountingRunner()
        try await withInotifyWatch(fixture, configuration, runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            #expect(!run.logs.all.contains { $0.contains("[not-traversable]") || $0.contains("[unreadable]") })
            let archive = fixture.writer.archiveDirectory("example.com")
            chmod(archive, 0o700)
            var unreadable: String?
            while unreadable == nil, let entry = await run.logs.next(within: 5) {
                if entry.contains("[not-traversable]") || entry.contains("[unreadable]") { unreadable = entry }
            }
            #expect(unreadable?.contains(archive) == true, "\(run.logs.all)")
            chmod(archive, 0o755)
            var again: String?
            while again == nil, let entry = await run.logs.next(within: 5) {
                if entry.contains("[readable-again]") { again = entry }
            }
            #expect(again?.contains("nobody") == true, "\(run.logs.all)")
        }
    }

    @Test("the configuration file written in place is read again, like SIGHUP")
    func configurationFileChanged() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let configuration = fixture.configuration()
        let run = WatchRun()
        let runner = CountingRunner()
        try await withInotifyWatch(fixture, configuration, runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            let text = """
                certbot-dir = "\(fixture.certbotDirectory)"
                state-dir = "\(fixture.state)"
                settle = 0.2
                [target.mail]
                lineages = ["example.com"]
                reload = { command = ["/bin/true"] }
                """
            try CertbotLayoutWriter.write(configuration.path, text, mode: 0o644)
            #expect(await run.hook("RELOADING=1") != nil)
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.target == "mail")
            #expect(await run.hook("READY=1") != nil)
        }
    }
}
