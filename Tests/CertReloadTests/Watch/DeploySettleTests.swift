import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("Watch: deploy --settle for the certreload@.path unit")
struct WatchDeploySettleTests {
    func start(_ fixture: WatchFixture, settleMax: Double) throws -> TestProcess {
        let binary = try #require(builtCertreload(), "build the executable first: swift build")
        let config = try fixture.writeConfig(
            """
            settle = 0.2
            settle-max = \(settleMax)
            [target.web]
            lineages = ["example.com"]
            reload = { command = ["/bin/true"] }
            """)
        return try TestProcess(
            [binary, "deploy", "--lineage", "example.com", "--settle", "0.2"],
            environment: ["CERTRELOAD_CONFIG": config], stderrPath: fixture.root + "/stderr.log")
    }

    @Test("a half-updated lineage is waited for, then deployed once it is consistent")
    func waitsForConsistency() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        try fixture.issue(version: 2, link: false)
        try fixture.writer.link(lineage: "example.com", .cert, toVersion: 2)  // certbot half-way
        let child = try start(fixture, settleMax: 30)
        // Finish certbot's work only once the child has looked and said that it waits.
        var output = ""
        while let line = try await child.line(within: 20) {
            output += line + "\n"
            if line.contains("is not consistent yet") { break }
        }
        #expect(output.contains("lineage example.com is not consistent yet ([version-mismatch]"), "\(output)")
        #expect(await child.exitStatus(within: 0.3) == nil, "still waiting, nothing deployed yet")
        #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == nil)
        for file in [LineageFile.privkey, .chain, .fullchain] {
            try fixture.writer.link(lineage: "example.com", file, toVersion: 2)
        }
        output += try await child.output(within: 20)
        #expect(output.contains("lineage example.com settled: version 2"), "\(output)")
        #expect(output.contains("[web] OK: deployed"), "\(output)")
        #expect(await child.exitStatus(within: 10) == 0)
        #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == fixture.sha(version: 2))
    }

    @Test("still inconsistent after settle-max: nothing is reloaded, exit status 1")
    func givesUpAfterSettleMax() async throws {
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        try fixture.issue(version: 2, link: false)
        try fixture.writer.link(lineage: "example.com", .cert, toVersion: 2)
        let child = try start(fixture, settleMax: 0.6)
        let output = try await child.output(within: 20)
        #expect(output.contains("still inconsistent after settle-max"), "\(output)")
        let status = try #require(await child.exitStatus(within: 10))
        #expect(status >> 8 == 1)
        #expect(StateStore(directory: fixture.state).load("web").deployedSHA256 == nil)
    }
}
