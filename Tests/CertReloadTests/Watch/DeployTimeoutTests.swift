import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("Deploy: --timeout cancels the work instead of exiting under it")
struct DeployTimeoutTests {
    @Test("a hung reload command is cut at --timeout: its process group is killed, nothing is recorded, exit 1 with the reason")
    func hungCommandIsCutShort() async throws {
        let binary = try #require(builtCertreload(), "build the executable first: swift build")
        let fixture = try WatchFixture()
        defer { fixture.remove() }
        try fixture.issue(version: 1)
        let seconds = SlowTargetWatchdogTests.sleepSeconds()
        let config = try fixture.writeConfig(
            """
            [target.hung]
            lineages = ["example.com"]
            reload = { command = ["/bin/sleep", "\(seconds)"], timeout = 300 }
            [target.later]
            lineages = ["example.com"]
            reload = { command = ["/bin/true"] }
            """)
        let child = try TestProcess(
            [binary, "deploy", "--lineage", "example.com", "--timeout", "1.5"],
            environment: ["CERTRELOAD_CONFIG": config], stderrPath: fixture.root + "/stderr.log")
        let output = try await child.output(within: 30)
        let status = try #require(await child.exitStatus(within: 15), "deploy did not end after its --timeout")
        #expect(status >> 8 == 1)
        #expect(output.contains("[hung] error [reload-timeout] /bin/sleep \(seconds) was cut short"), "\(output)")
        #expect(output.contains("[later] not started: the time limit was reached"), "\(output)")
        let stderr = SlowTargetWatchdogTests.tail(fixture.root + "/stderr.log")
        #expect(stderr.contains("gave up after 1.5 s (--timeout)"), "\(stderr)")
        #expect(SlowTargetWatchdogTests.processes(running: ["/bin/sleep", seconds]).isEmpty, "the command's process group was killed")
        #expect(StateStore(directory: fixture.state).load("hung").deployedSHA256 == nil)
        #expect(StateStore(directory: fixture.state).load("later").deployedSHA256 == nil)
    }
}
