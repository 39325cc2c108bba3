#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

@testable import CertReload
@testable import CertReloadDemo

/// Verify against real TLS peers on loopback: `openssl s_server` for implicit TLS and
/// Tests/Support/starttls_server.py (Python's ssl, i.e. OpenSSL) for STARTTLS.
@Suite("Probe: verify against real servers on loopback", .serialized)
struct ProbeVerifierTests {
    static let host = "mail.example.test"

    /// A verifier for `scheme://mail.example.test:PORT` that dials 127.0.0.1.
    func verifier(
        _ scheme: String, port: UInt16, fixture: ProbeFixture, previous: Certificate? = nil, host: String = host,
        timeout: Double = 5, withoutSNI: Bool = false
    ) throws -> Verifier {
        let endpoint = try VerifyEndpoint(parsing: "\(scheme)://\(host):\(port)")
        return Verifier(
            endpoint: endpoint, expectedSHA256: fixture.leaf.sha256, previousSHA256: previous?.sha256,
            connect: "127.0.0.1", caFile: fixture.path("root.pem"), timeout: timeout,
            probeWithoutSNI: withoutSNI)
    }

    func python(_ dialog: String, _ flags: [String], _ fixture: ProbeFixture) throws -> LoopbackPeer {
        try LoopbackPeer.startTLSServer(["--protocol", dialog] + flags, directory: fixture.directory)
    }

    func serving(_ cert: String, _ key: String, _ fixture: ProbeFixture) -> [String] {
        ["--cert", fixture.path(cert), "--key", fixture.path(key)]
    }

    // MARK: The expected certificate

    @Test func implicitTLSServesTheExpectedLeaf() async throws {
        let fixture = try ProbeFixture()
        let server = try LoopbackPeer.openSSLServer(
            certificate: fixture.path("cert.pem"), key: fixture.path("privkey.pem"), chain: fixture.path("chain.pem"),
            directory: fixture.directory)
        let result = try await verifier("smtps", port: server.port, fixture: fixture).verify()

        #expect(result.problems == [], "\(result.problems.map(\.message))")
        #expect(result.succeeded)
        #expect(result.servedSHA256 == fixture.leaf.sha256)
        #expect(result.attempts == 1)
        #expect(result.summary.contains("serves the expected certificate sha256 \(fixture.leaf.sha256)"))
        let probe = try #require(result.probe)
        #expect(probe.trust.trusted)
        #expect(probe.serverName == Self.host)
        #expect(probe.address == "127.0.0.1:\(server.port)")
        #expect(probe.chain.map(\.sha256) == [fixture.ca.intermediate.sha256])
        #expect(probe.protocolVersion.hasPrefix("TLSv1."))
        #expect(probe.transcript == [])
    }

    @Test(.enabled(if: hasIPv6Loopback(), "no IPv6 loopback"))
    func dialsAnIPv6LiteralAndStillSendsTheHostnameAsSNI() async throws {
        let fixture = try ProbeFixture()
        let server = try LoopbackPeer.openSSLServer(
            certificate: fixture.path("cert.pem"), key: fixture.path("privkey.pem"), chain: fixture.path("chain.pem"),
            directory: fixture.directory, address: "::1")
        let endpoint = try VerifyEndpoint(parsing: "imaps://[::1]:\(server.port)")
        let verifier = Verifier(
            endpoint: endpoint, expectedSHA256: fixture.leaf.sha256, hostname: Self.host, caFile: fixture.path("root.pem"))
        let result = await verifier.verify()
        #expect(result.problems == [], "\(result.problems.map(\.message))")
        #expect(result.probe?.address == "[::1]:\(server.port)")
        #expect(result.probe?.serverName == Self.host)
        #expect(verifier.probe(sendServerName: true, timeout: 1).manualCommand.hasPrefix(
            "openssl s_client -connect [::1]:\(server.port) -servername \(Self.host) </dev/null"))
    }

    @Test(arguments: ["smtp", "imap", "pop3"])
    func startTLSServesTheExpectedLeaf(_ dialog: String) async throws {
        let fixture = try ProbeFixture()
        let server = try python(dialog, serving("fullchain.pem", "privkey.pem", fixture), fixture)
        let result = try await verifier(dialog, port: server.port, fixture: fixture).verify()

        #expect(result.problems == [], "\(result.problems.map(\.message)) \(server.log)")
        #expect(result.servedSHA256 == fixture.leaf.sha256)
        let probe = try #require(result.probe)
        #expect(probe.trust.trusted)
        // The transcript holds what the server said, greeting to go-ahead.
        let expected: [String: (String, String)] = [
            "smtp": ("220-localhost certreload test ESMTP", "220 2.0.0 Ready to start TLS"),
            "imap": ("* OK [CAPABILITY IMAP4rev1] certreload test IMAP ready", "b OK Begin TLS negotiation now"),
            "pop3": ("+OK certreload test POP3 ready", "+OK Begin TLS negotiation"),
        ]
        #expect(probe.transcript.first == expected[dialog]?.0)
        #expect(probe.transcript.last == expected[dialog]?.1)
    }

    @Test func retriesUntilTheReloadedServerServesTheRenewedLeaf() async throws {
        let fixture = try ProbeFixture()
        let server = try python(
            "smtp",
            serving("previous-fullchain.pem", "previous-privkey.pem", fixture)
                + ["--renewed-cert", fixture.path("fullchain.pem"), "--renewed-key", fixture.path("privkey.pem"),
                   "--renew-after", "2"],
            fixture)
        let result = try await verifier("smtp", port: server.port, fixture: fixture, previous: fixture.previous, timeout: 10)
            .verify()

        #expect(result.problems == [], "\(result.problems.map(\.message))")
        #expect(result.attempts == 3)
        #expect(result.servedSHA256 == fixture.leaf.sha256)
    }

    // MARK: The wrong certificate

    @Test func staleWhenThePreviousLeafIsStillServed() async throws {
        let fixture = try ProbeFixture()
        let server = try python("smtp", serving("previous-fullchain.pem", "previous-privkey.pem", fixture), fixture)
        let started = ProbeDeadline.now()
        let verifier = try verifier("smtp", port: server.port, fixture: fixture, previous: fixture.previous, timeout: 6)
        let result = await verifier.verify()
        let elapsed = Double(ProbeDeadline.now() - started) / 1e9

        let problem = try #require(result.problems.first)
        #expect(result.problems.count == 1)
        #expect(problem.code == .verifyStale)
        #expect(problem.severity == .error)
        #expect(problem.path == verifier.endpoint.url)
        #expect(problem.message.contains("still serves the previous certificate (sha256 \(fixture.previous.sha256)"))
        #expect(problem.message.contains("renewed one (sha256 \(fixture.leaf.sha256))"))
        #expect(problem.fix?.contains("openssl s_client -connect 127.0.0.1:\(server.port) -servername \(Self.host) -starttls smtp") == true)
        #expect(result.attempts >= 2)
        #expect(result.servedSHA256 == fixture.previous.sha256)
        #expect(!result.succeeded)
        #expect(elapsed < 30, "bounded by verify-timeout and the attempt timeout, not by the server (took \(elapsed) s)")
    }

    @Test func wrongCertificateNamesTheSelfSignedFallback() async throws {
        let fixture = try ProbeFixture()
        let server = try python("imap", serving("selfsigned.pem", "selfsigned-key.pem", fixture), fixture)
        let result = try await verifier("imap", port: server.port, fixture: fixture, previous: fixture.previous, timeout: 0.5)
            .verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.verifyWrongCertificate])
        #expect(problem.message.contains("sha256 \(fixture.selfSigned.sha256)"))
        #expect(problem.message.contains("subject CN=localhost, issuer CN=localhost, self-signed"))
        #expect(problem.message.contains("Clients get a self-signed certificate"))
        #expect(problem.fix?.contains("fullchain.pem") == true)
    }

    @Test func wrongCertificateFromTheSameCAIsNotCalledSelfSigned() async throws {
        let fixture = try ProbeFixture()
        let server = try python("pop3", serving("previous-fullchain.pem", "previous-privkey.pem", fixture), fixture)
        // No previous SHA-256 known: an unexpected certificate is "wrong", not "stale".
        let result = try await verifier("pop3", port: server.port, fixture: fixture, timeout: 0.5).verify()

        let problem = try #require(result.problems.first)
        #expect(problem.code == .verifyWrongCertificate)
        #expect(problem.message.contains("issuer CN=certreload test intermediate"))
        #expect(!problem.message.contains("self-signed"))
    }

    // MARK: STARTTLS

    @Test(arguments: [
        ("smtp", "\"250 8BITMIME\""), ("imap", "\"* CAPABILITY IMAP4rev1 LITERAL+\""), ("pop3", "\"TOP\" / \".\""),
    ])
    func startTLSNotOffered(_ dialog: String, _ quoted: String) async throws {
        let fixture = try ProbeFixture()
        let server = try python(dialog, ["--starttls", "absent"], fixture)
        let result = try await verifier(dialog, port: server.port, fixture: fixture, timeout: 0.5).verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.starttlsNotOffered])
        #expect(problem.message.contains(quoted), "\(problem.message)")
        #expect(problem.message.contains("does not list \(dialog == "pop3" ? "STLS" : "STARTTLS")"))
        #expect(problem.message.contains("TLS is not enabled on that listener"))
        #expect(problem.fix?.contains("enable TLS on port \(server.port)") == true)
        #expect(result.servedSHA256 == nil)
    }

    @Test(arguments: [
        ("smtp", "\"454 4.7.0 TLS not available due to temporary reason\""),
        ("imap", "\"b NO [UNAVAILABLE] TLS is not available\""), ("pop3", "\"-ERR TLS not available\""),
    ])
    func startTLSRefused(_ dialog: String, _ quoted: String) async throws {
        let fixture = try ProbeFixture()
        let server = try python(dialog, ["--starttls", "refuse"], fixture)
        let result = try await verifier(dialog, port: server.port, fixture: fixture, timeout: 0.5).verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.starttlsRefused])
        #expect(problem.message.contains(quoted), "\(problem.message)")
    }

    @Test func startTLSOnAnImplicitTLSPortSuggestsTheImplicitScheme() async throws {
        let fixture = try ProbeFixture()
        let listener = try SilentListener()
        let probe = TLSProbe(
            endpoint: try VerifyEndpoint(parsing: "smtp://\(Self.host):\(listener.port)"),
            connect: "127.0.0.1", timeout: 0.5)
        let started = ProbeDeadline.now()
        let failure = try #require(throws: TLSProbeFailure.self) { try probe.run() }
        #expect(Double(ProbeDeadline.now() - started) / 1e9 < 3)
        #expect(failure.code == .verifyHandshakeFailed)
        #expect(failure.message.contains("sent no SMTP greeting in time"))
        #expect(failure.message.contains("smtps://"))
        _ = fixture
    }

    // MARK: Connection and handshake

    @Test func connectFailedOnAClosedPort() async throws {
        let fixture = try ProbeFixture()
        let closed = try ClosedPort()
        let verifier = try verifier("smtps", port: closed.port, fixture: fixture, timeout: 0.5)
        let result = await verifier.verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.verifyConnectFailed])
        #expect(problem.message.contains("cannot connect to 127.0.0.1:\(closed.port): Connection refused"), "\(problem.message)")
        #expect(problem.path == verifier.endpoint.url)
        #expect(problem.fix?.contains("ss -ltnp 'sport = :\(closed.port)'") == true)
    }

    @Test func handshakeFailsAgainstAPlaintextServerOnATLSPort() async throws {
        let fixture = try ProbeFixture()
        let server = try python("smtp", ["--starttls", "absent"], fixture)
        let result = try await verifier("smtps", port: server.port, fixture: fixture, timeout: 0.5).verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.verifyHandshakeFailed])
        #expect(problem.message.contains("TLS handshake with 127.0.0.1:\(server.port) failed"))
        // OpenSSL's own reason, e.g. "error:0A00010B:SSL routines::wrong version number".
        #expect(problem.message.contains("SSL routines"), "\(problem.message)")
        #expect(problem.fix?.contains("use the STARTTLS scheme") == true)
    }

    @Test func hostnameMismatchWhenTheLeafDoesNotCoverTheURLHost() async throws {
        let fixture = try ProbeFixture()
        let server = try LoopbackPeer.openSSLServer(
            certificate: fixture.path("cert.pem"), key: fixture.path("privkey.pem"), chain: fixture.path("chain.pem"),
            directory: fixture.directory)
        let result = try await verifier("imaps", port: server.port, fixture: fixture, host: "other.example.test").verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.verifyHostnameMismatch])
        #expect(problem.severity == .error)
        #expect(problem.message.contains("does not cover other.example.test (it names mail.example.test)"))
        #expect(problem.fix?.contains("-d mail.example.test -d other.example.test") == true)
        #expect(result.servedSHA256 == fixture.leaf.sha256)
        #expect(result.probe?.serverName == "other.example.test")
    }

    @Test func untrustedChainIsOnlyAWarning() async throws {
        let fixture = try ProbeFixture()
        // cert.pem alone, without the intermediate: the classic "served cert.pem, not fullchain.pem".
        let server = try LoopbackPeer.openSSLServer(
            certificate: fixture.path("cert.pem"), key: fixture.path("privkey.pem"), directory: fixture.directory)
        let result = try await verifier("https", port: server.port, fixture: fixture).verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.verifyUntrusted])
        #expect(problem.severity == .warning)
        #expect(result.succeeded)
        #expect(problem.message.contains("unable to get local issuer certificate"))
        #expect(problem.fix?.contains("serve fullchain.pem, not cert.pem") == true)
        #expect(result.probe?.trust.trusted == false)
    }

    // MARK: SNI

    @Test func sniDefaultDiffersWhenClientsWithoutSNIGetAnotherCertificate() async throws {
        let fixture = try ProbeFixture()
        let server = try python(
            "smtp",
            serving("fullchain.pem", "privkey.pem", fixture)
                + ["--nosni-cert", fixture.path("selfsigned.pem"), "--nosni-key", fixture.path("selfsigned-key.pem")],
            fixture)
        let result = try await verifier("smtp", port: server.port, fixture: fixture, withoutSNI: true).verify()

        let problem = try #require(result.problems.first)
        #expect(result.problems.map(\.code) == [.sniDefaultDiffers])
        #expect(problem.severity == .warning)
        #expect(result.succeeded)
        #expect(result.servedSHA256 == fixture.leaf.sha256)
        #expect(problem.message.contains("clients that send no SNI"))
        #expect(problem.message.contains("sha256 \(fixture.selfSigned.sha256)"))
        #expect(problem.message.contains("self-signed certificate"))
        #expect(problem.fix?.contains("-noservername") == true)
    }

    @Test func noSNIWarningWhenTheDefaultIsTheExpectedLeaf() async throws {
        let fixture = try ProbeFixture()
        let server = try python("smtp", serving("fullchain.pem", "privkey.pem", fixture), fixture)
        let result = try await verifier("smtp", port: server.port, fixture: fixture, withoutSNI: true).verify()
        #expect(result.problems == [], "\(result.problems.map(\.message))")
    }

    @Test func probeWithoutSNISendsNone() throws {
        let fixture = try ProbeFixture()
        let server = try python(
            "pop3",
            serving("fullchain.pem", "privkey.pem", fixture)
                + ["--nosni-cert", fixture.path("selfsigned.pem"), "--nosni-key", fixture.path("selfsigned-key.pem")],
            fixture)
        let endpoint = try VerifyEndpoint(parsing: "pop3://\(Self.host):\(server.port)")
        let withSNI = try TLSProbe(endpoint: endpoint, connect: "127.0.0.1").run()
        let without = try TLSProbe(endpoint: endpoint, sendServerName: false, connect: "127.0.0.1").run()
        #expect(withSNI.leaf.sha256 == fixture.leaf.sha256)
        #expect(without.leaf.sha256 == fixture.selfSigned.sha256)
        #expect(without.serverName == nil)
        // Untrusted is reported, never a failure of the probe.
        #expect(without.trust.trusted == false)
        #expect(without.trust.anchors == "the system trust store")
    }
}
