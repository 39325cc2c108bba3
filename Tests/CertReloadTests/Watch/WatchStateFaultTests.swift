import Logging
import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The next log entry containing `text`, skipping others; nil after `seconds`.
func logEntry(_ run: WatchRun, containing text: String, within seconds: Double = 5) async -> String? {
    let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
    while ContinuousClock.now < deadline {
        let left = Double((deadline - .now).components.seconds) + 0.2
        guard let entry = await run.logs.next(within: left) else { return nil }
        if entry.contains(text) { return entry }
    }
    return nil
}

/// The state directory failing under a running watch (issue 11): the reload happens once,
/// the record is kept in memory and written again with backoff; a deleted state directory
/// is written again from memory. Nothing is reloaded twice.
@Suite("Watch: the state directory fails while watching")
struct WatchStateFaultTests {
    func service(_ configuration: Configuration, _ run: WatchRun) -> WatchService {
        run.service(configuration, backoffMax: .milliseconds(400))
    }

    @Test("unwritable during a renewal: one reload, state-unwritable, no reload on rechecks, recorded once writable")
    func unwritableThenWritable() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            // A regular file where the directory was: every write fails (no root needed).
            FileTree.remove(fixture.state)
            try writeFile(fixture.state, "in the way\n")
            try fixture.issue(version: 2)
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.action == .deploy)
            #expect(call.snapshot.sha256 == fixture.sha(version: 2))
            let warning = try #require(await logEntry(run, containing: "[state-unwritable]"))
            #expect(warning.contains(fixture.state + "/web.state"), "names the file: \(warning)")
            #expect(warning.contains("keeps the record in memory"))
            // Rechecks while it stays unwritable: the record in memory says deployed.
            run.continuation.yield(.recheck)
            run.continuation.yield(.recheck)
            #expect(await runner.calls.next(within: 1.0) == nil, "no second reload while the record cannot be written")
            unlink(fixture.state)
            let recorded = try #require(await logEntry(run, containing: "[state-recorded]"))
            #expect(recorded.contains(fixture.state + "/web.state"))
            #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == fixture.sha(version: 2))
            run.continuation.yield(.recheck)
            #expect(await runner.calls.next(within: 0.6) == nil)
            // Unwritable once more at the next renewal: news again, logged again.
            try writeFile(fixture.state + ".blocker", "")
            FileTree.remove(fixture.state)
            rename(fixture.state + ".blocker", fixture.state)
            try fixture.issue(version: 3)
            run.changed()
            _ = try #require(await runner.calls.next(within: 5))
            let again = try #require(await logEntry(run, containing: "[state-unwritable]"), "\(run.logs.all)")
            #expect(again.contains(fixture.state + "/web.state"))
        }
        #expect(runner.calls.all.count == 3, "the start-up pass and two renewals, nothing more")
    }

    @Test("the state directory deleted while watching: written again from memory, nothing reloaded")
    func deletedWhileWatching() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(fixture.configuration(), run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == fixture.sha(version: 1), "\(run.logs.all)")
            FileTree.remove(fixture.state)
            run.continuation.yield(.recheck)
            let entry = try #require(await logEntry(run, containing: "[state-missing]"))
            #expect(entry.contains(fixture.state), "names the directory: \(entry)")
            #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == fixture.sha(version: 1))
            #expect(await runner.calls.next(within: 0.6) == nil)
            // And a renewal after that is deployed once, as usual.
            try fixture.issue(version: 2)
            run.changed()
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.action == .deploy)
        }
        #expect(runner.calls.all.count == 2)
    }

    @Test("the state directory's parent deleted too: state-unwritable until it exists again, then recorded")
    func parentDeleted() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        var configuration = fixture.configuration()
        let parent = fixture.root + "/var-lib"
        let stateDirectory = parent + "/certreload"
        configuration.stateDirectory = stateDirectory
        mkdir(parent, 0o755)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withWatch(service(configuration, run), runner: runner, run: run) {
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            FileTree.remove(parent)
            try fixture.issue(version: 2)
            run.changed()
            _ = try #require(await runner.calls.next(within: 5))
            // Before the reload: the record of version 1 could not be written again either.
            let missing = try #require(await logEntry(run, containing: "[state-missing]"))
            #expect(missing.contains("keeps trying to write"), "\(missing)")
            // The reload's own record (version 2).
            let warning = try #require(await logEntry(run, containing: "[state-unwritable]"), "\(run.logs.all)")
            #expect(warning.contains("No such file or directory"), "the cause: \(warning)")
            mkdir(parent, 0o755)
            _ = try #require(await logEntry(run, containing: "[state-recorded]"), "\(run.logs.all)")
            #expect(StateStore(directory: stateDirectory).load("web").deployedSHA256 == fixture.sha(version: 2))
            #expect(await runner.calls.next(within: 0.6) == nil)
        }
        #expect(runner.calls.all.count == 2)
    }
}
