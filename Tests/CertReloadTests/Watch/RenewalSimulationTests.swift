import Logging
import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Performs certbot's renewal of a lineage file by file, as `certbot renew` does it
/// (certbot/_internal/storage.py: `save_successor`, then `update_all_links_to`):
/// archive files written in place (privkey, cert, chain, fullchain), `previous_*.pem`
/// links to the current targets, each link replaced by unlink()+symlink() in the order
/// cert, privkey, chain, fullchain, then the `previous_*.pem` links removed.
struct RenewalSimulator {
    let fixture: WatchFixture
    let lineage: String
    /// Random pause between two steps.
    var pause: () -> Duration

    func renew(to version: Int) async throws {
        let writer = fixture.writer
        let pair = fixture.versions[(version - 1) % fixture.versions.count]
        let chain = fixture.ca.intermediate.pem
        let files: [(LineageFile, String, mode_t)] = [
            (.privkey, pair.key.pem(), 0o600), (.cert, pair.certificate.pem, 0o644), (.chain, chain, 0o644),
            (.fullchain, pair.certificate.pem + chain, 0o644),
        ]
        for (kind, text, mode) in files {
            try CertbotLayoutWriter.write(writer.archivePath(lineage, kind, version: version), text, mode: mode)
            try await step()
        }
        let live = writer.liveDirectory(lineage)
        let order: [LineageFile] = [.cert, .privkey, .chain, .fullchain]
        for kind in order {
            let current = writer.archivePath(lineage, kind, version: version - 1)
            #expect(symlink(current, live + "/previous_\(kind.linkName)") == 0)
            try await step()
        }
        for kind in order {
            try writer.link(lineage: lineage, kind, toVersion: version)  // unlink() then symlink()
            try await step()
        }
        for kind in order {
            #expect(unlink(live + "/previous_\(kind.linkName)") == 0)
            try await step()
        }
    }

    private func step() async throws {
        let duration = pause()
        if duration > .zero { try await Task.sleep(for: duration) }
    }
}

@Suite("Watch: renewal simulation against inotify", .serialized)
struct WatchRenewalSimulationTests {
    /// CERTRELOAD_SIMULATED_RENEWALS overrides the count (scripts/simulate-renewals).
    static var renewals: Int {
        getenv("CERTRELOAD_SIMULATED_RENEWALS").flatMap { Int(String(cString: $0)) } ?? 1000
    }

    @Test("certbot's exact link sequence, many times: one reload per renewal, never of a half-updated set")
    func simulatedRenewals() async throws {
        let fixture = try WatchFixture(versionCount: 4)
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let run = WatchRun()
        let runner = CountingRunner()
        let configuration = fixture.configuration(targets: ["web": ["example.com"], "mail": ["example.com"]], settle: 0.025, settleMax: 5)
        var service = WatchService(configuration: configuration, logger: run.logger)
        service.shutdownGrace = .seconds(5)
        let inotify = try InotifySource(
            certbotDirectory: fixture.certbotDirectory, configPath: nil, continuation: run.continuation)
        defer { inotify.cancel() }
        var hooks = run.watchHooks
        hooks.watchLineages = { configuration in
            inotify.watch(certbotDirectory: configuration.certbotDirectory, lineages: configuration.targets.flatMap(\.lineages))
        }
        let count = Self.renewals
        let pauses = Locked(SystemRandomNumberGenerator())
        let simulator = RenewalSimulator(fixture: fixture, lineage: "example.com") {
            pauses.withLock { random in
                // Mostly short; now and then longer than the settle window, so that the loop
                // also looks at a lineage that is quiet but half-updated.
                let roll = Int.random(in: 0..<100, using: &random)
                if roll < 2 { return .milliseconds(Int.random(in: 40...80, using: &random)) }
                if roll < 40 { return .microseconds(Int.random(in: 0...1500, using: &random)) }
                return .zero
            }
        }
        var missed = 0
        var wrongVersion = 0
        var extra = 0
        let started = ContinuousClock.now
        let (finalService, finalHooks) = (service, hooks)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await finalService.run(events: run.events, runner: runner, hooks: finalHooks) }
            // First pass: both targets, version 1.
            for _ in 0..<2 { _ = await runner.calls.next(within: 10) }
            #expect(await run.hook("READY=1") != nil)
            for version in 2...(count + 1) {
                try await simulator.renew(to: version)
                // Quiet between renewals: wait for the reload of each target.
                var seen: Set<String> = []
                while seen.count < 2, let call = await runner.calls.next(within: 5) {
                    if call.snapshot.version != version { wrongVersion += 1 }
                    if !seen.insert(call.target).inserted { extra += 1 }
                }
                missed += 2 - seen.count
            }
            // Anything late?
            while await runner.calls.next(within: 0.3) != nil { extra += 1 }
            run.continuation.yield(.stop)
            try await group.waitForAll()
        }
        let calls = runner.calls.all.dropFirst(2)
        let inconsistent = calls.filter { !$0.snapshot.consistent }.count
        let perTarget = Dictionary(grouping: calls, by: \.target).mapValues(\.count)
        let seconds = Double((ContinuousClock.now - started).components.seconds)
        print(
            "renewal simulation: renewals=\(count) targets=2 reloads=\(calls.count) (web=\(perTarget["web"] ?? 0) mail=\(perTarget["mail"] ?? 0)) inconsistent-reloads=\(inconsistent) missed=\(missed) wrong-version=\(wrongVersion) extra=\(extra) seconds=\(Int(seconds))"
        )
        #expect(inconsistent == 0)
        #expect(missed == 0)
        #expect(wrongVersion == 0)
        #expect(extra == 0)
        #expect(calls.count == 2 * count)
        #expect(calls.allSatisfy { $0.action == .deploy })
    }
}
