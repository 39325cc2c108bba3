import Logging
import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The decision loop fed by the polling fallback alone (what runs when inotify's limits are
/// reached): the same events, so the same single reload per renewal.
func withPollingWatch(
    _ fixture: WatchFixture, _ configuration: Configuration, interval: Duration, runner: CountingRunner, run: WatchRun,
    _ body: @Sendable (PollingSource) async throws -> Void
) async throws {
    var service = WatchService(configuration: configuration, logger: run.logger)
    service.shutdownGrace = .seconds(5)
    let poller = PollingSource(interval: interval, continuation: run.continuation)
    defer { poller.cancel() }
    var hooks = run.watchHooks
    hooks.watchLineages = { configuration in
        poller.poll(
            certbotDirectory: configuration.certbotDirectory, lineages: Set(configuration.targets.flatMap(\.lineages)),
            interval: interval)
    }
    try await withWatch(service, runner: runner, run: run, hooks: hooks) { try await body(poller) }
}

@Suite("Watch: inotify's limits and the polling fallback")
struct InotifyFallbackTests {
    @Test("the watch-limit message names the sysctl, its value, the watches needed, and a sysctl.d line")
    func watchLimitWording() {
        let (message, fix) = InotifyLimits.watchLimitMessage(
            path: "/etc/letsencrypt/live/example.com", needed: 12, inPlace: 8, polled: ["example.com"],
            pollInterval: .seconds(30), limit: ("fs.inotify.max_user_watches", 8, 8))
        #expect(message.contains("could not watch /etc/letsencrypt/live/example.com as \(Account.current().name)"))
        #expect(message.contains("No space left on device"))
        #expect(message.contains("fs.inotify.max_user_watches is 8;"))
        #expect(message.contains("needs 12 watch(es) and has 8"))
        #expect(message.contains("every 30 s (poll-interval): example.com"))
        #expect(fix.contains("sysctl fs.inotify.max_user_watches=8192"))
        #expect(fix.contains("echo 'fs.inotify.max_user_watches = 8192' > /etc/sysctl.d/90-certreload-inotify.conf"))
    }

    @Test("in a user namespace with a lower limit, the message names that limit and the host's")
    func namespaceWording() {
        let (message, fix) = InotifyLimits.watchLimitMessage(
            path: "/x/live/a", needed: 6, inPlace: 4, polled: ["a"], pollInterval: .seconds(2),
            limit: ("user.max_inotify_watches", 4, 192_530))
        #expect(message.contains("user.max_inotify_watches is 4 in certreload's user namespace (the host's fs.inotify.max_user_watches is 192530)"))
        #expect(fix.contains("echo 8192 > /proc/sys/user/max_inotify_watches"))
    }

    @Test("the sysctls are read from /proc/sys")
    func readsProc() throws {
        let value = try #require(InotifyLimits.value("fs.inotify.max_user_watches"))
        // The whole number, as another reader sees it (a /proc/sys file reports size 0).
        let file = try #require(fopen("/proc/sys/fs/inotify/max_user_watches", "r"))
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 64)
        _ = fgets(&line, 64, file)
        let text = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(value == Int(text))
        #expect(InotifyLimits.effective(.watches).value ?? 0 <= value)
    }

    @Test("polling alone notices a renewal (certbot's link updates) and it is reloaded once")
    func pollingNoticesRenewal() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        try await withPollingWatch(fixture, fixture.configuration(), interval: .milliseconds(300), runner: runner, run: run) { poller in
            _ = try #require(await runner.calls.next(within: 10))
            #expect(await run.hook("READY=1") != nil)
            #expect(poller.polled == ["example.com"])
            try fixture.issue(version: 2, link: false)
            for file in LineageFile.allCases { try fixture.writer.link(lineage: "example.com", file, toVersion: 2) }
            let call = try #require(await runner.calls.next(within: 5))
            #expect(call.action == .deploy)
            #expect(call.snapshot.sha256 == fixture.sha(version: 2))
            #expect(call.snapshot.consistent)
            #expect(await runner.calls.next(within: 1.0) == nil, "one reload per renewal")
        }
        #expect(runner.calls.all.count == 2)
    }

    @Test("polling reports a mode change as an attribute change, a link update as a change")
    func pollingEvents() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let (events, continuation) = AsyncStream.makeStream(of: WatchEvent.self)
        let poller = PollingSource(interval: .milliseconds(100), continuation: continuation)
        defer { poller.cancel() }
        let seen = Mailbox<WatchEvent>()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await event in events { seen.post(event) } }
            poller.poll(certbotDirectory: fixture.certbotDirectory, lineages: ["example.com"], interval: .milliseconds(100))
            #expect(await seen.next(within: 5) == .lineageChanged("example.com"), "newly polled: looked at once")
            chmod(fixture.writer.archiveDirectory("example.com"), 0o700)
            #expect(await seen.next(within: 5) == .attributesChanged("example.com"))
            try? fixture.issue(version: 2)
            var next: WatchEvent?
            repeat { next = await seen.next(within: 5) } while next == .attributesChanged("example.com")
            #expect(next == .lineageChanged("example.com"))
            poller.poll(certbotDirectory: fixture.certbotDirectory, lineages: [], interval: .milliseconds(100))
            continuation.finish()
        }
        #expect(poller.polled.isEmpty)
    }
}
