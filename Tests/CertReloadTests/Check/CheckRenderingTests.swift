import CertReload
import CertReloadDemo
import Glibc
import Logging
import Testing

@Suite("What check prints")
struct CheckRenderingTests {
    @Test("JSON has the documented shape and never contains a private key")
    func jsonShape() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("json.test", names: ["json.test", "*.json.test"])
        try fixture.issue("broken.test")
        unlink(fixture.live("broken.test") + "/chain.pem")
        let report = try Checker(options: CheckOptions(now: fixture.now)).check(fixture.directory.lineages())
        let text = CheckRendering.json(report).serialized(pretty: true)
        #expect(!text.contains("PRIVATE KEY"))
        #expect(text.contains("\"lineages\": ["))
        #expect(text.contains("\"name\": \"json.test\""))
        #expect(text.contains("\"sans\": [\n"))
        #expect(text.contains("\"code\": \"missing\""))
        #expect(text.contains("\"severity\": \"error\""))
        #expect(text.contains("\"service_user_given\": false"))
        #expect(!report.usable)
    }

    @Test("text names the user and says when no service user was given; no colour unless asked")
    func text() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("text.test")
        let report = try Checker(options: CheckOptions(now: fixture.now)).check(fixture.directory.lineages())
        let plain = CheckRendering(color: false).text(report, now: fixture.now)
        #expect(plain.contains("No service user given"))
        #expect(plain.contains("text.test  OK"))
        #expect(!plain.contains("\u{1B}["))
        #expect(CheckRendering(color: true).text(report, now: fixture.now).contains("\u{1B}["))
    }

    @Test("JSON strings are escaped")
    func escaping() {
        #expect(JSON.string("a\"b\\c\n\u{01}").serialized() == "\"a\\\"b\\\\c\\n\\u0001\"")
    }

    @Test("the demo shows each of its three stories")
    func demo() throws {
        let account = try runningAsRoot ? nobody() : Account.current()
        let demo = try Demo.build(serviceUser: account)
        defer { demo.remove() }
        let report = try demo.check()
        if runningAsRoot {
            let failed = Demo.outcomes(of: report).filter { !$0.1 }.map(\.0.lineage)
            #expect(failed.isEmpty)
        }
        #expect(report.lineages.first { $0.name == "renewing.example" }?.codes.contains(.versionMismatch) == true)
    }

    @Test("the demo's loopback walkthrough: stale, then deployed and verified, then no STARTTLS",
          .enabled(if: runningAsRoot, "the demo lineage is readable by nobody only when chown works"))
    func walkthrough() async throws {
        let demo = try Demo.build(serviceUser: try nobody())
        defer { demo.remove() }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let steps = try await DemoWalkthrough(demo: demo).run(logger: logger)
        try #require(steps.count == 3)
        // What a user reads, checked here on its own terms (not through the demo's own verdict).
        #expect(steps[0].outcome.status == .failed)
        #expect(steps[0].outcome.problems.map(\.code) == [.verifyStale], "\(steps[0].outcome.text)")
        #expect(steps[1].outcome.status == .deployed, "\(steps[1].outcome.text)")
        #expect(steps[1].outcome.lines.contains { $0.hasPrefix("reloaded HTTP") || $0.hasPrefix("reloaded ") })
        #expect(steps[1].outcome.lines.contains { $0.hasPrefix("verified tls://healthy.example:") })
        #expect(steps[2].outcome.problems.map(\.code).contains(.starttlsNotOffered), "\(steps[2].outcome.text)")
        // The renewed certificate (version 2 on disk) is the one recorded as deployed and verified.
        let onDisk = try #require(try demo.check().lineages.first { $0.name == "healthy.example" }?.certificate?.sha256)
        let state = StateStore(directory: demo.root + "/state").load("web")
        #expect(state.deployedSHA256 == onDisk)
        #expect(state.verifiedSHA256 == onDisk)
        // The demo's own verdict agrees.
        #expect(steps.allSatisfy { $0.asExpected })
    }
}
