import Testing

@testable import CertReload
@testable import CertReloadDemo

@Suite("Probe: verify URLs")
struct ProbeURLTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var url: String
        var host: String
        var port: Int
        var startTLS: StartTLSDialog?
        /// What problems name the endpoint by.
        var canonical: String
        var testDescription: String { url }
    }

    /// Every scheme, its usual port and whether the probe speaks STARTTLS first.
    static let rows: [Row] = [
        Row(url: "smtp://mail.example.com", host: "mail.example.com", port: 25, startTLS: .smtp,
            canonical: "smtp://mail.example.com:25"),
        Row(url: "submission://mail.example.com", host: "mail.example.com", port: 587, startTLS: .smtp,
            canonical: "submission://mail.example.com:587"),
        Row(url: "smtps://mail.example.com", host: "mail.example.com", port: 465, startTLS: nil,
            canonical: "smtps://mail.example.com:465"),
        Row(url: "submissions://mail.example.com", host: "mail.example.com", port: 465, startTLS: nil,
            canonical: "submissions://mail.example.com:465"),
        Row(url: "imap://mail.example.com", host: "mail.example.com", port: 143, startTLS: .imap,
            canonical: "imap://mail.example.com:143"),
        Row(url: "imaps://mail.example.com", host: "mail.example.com", port: 993, startTLS: nil,
            canonical: "imaps://mail.example.com:993"),
        Row(url: "pop3://mail.example.com", host: "mail.example.com", port: 110, startTLS: .pop3,
            canonical: "pop3://mail.example.com:110"),
        Row(url: "pop3s://mail.example.com", host: "mail.example.com", port: 995, startTLS: nil,
            canonical: "pop3s://mail.example.com:995"),
        Row(url: "https://www.example.com", host: "www.example.com", port: 443, startTLS: nil,
            canonical: "https://www.example.com:443"),
        Row(url: "tls://db.example.com:5432", host: "db.example.com", port: 5432, startTLS: nil,
            canonical: "tls://db.example.com:5432"),
        Row(url: "smtp://mail.example.com:2525", host: "mail.example.com", port: 2525, startTLS: .smtp,
            canonical: "smtp://mail.example.com:2525"),
        Row(url: "smtp://[2001:db8::1]:25", host: "2001:db8::1", port: 25, startTLS: .smtp,
            canonical: "smtp://[2001:db8::1]:25"),
        Row(url: "imaps://[::1]", host: "::1", port: 993, startTLS: nil, canonical: "imaps://[::1]:993"),
    ]

    @Test(arguments: rows)
    func probeViewOfAVerifyURL(_ row: Row) throws {
        let endpoint = try VerifyEndpoint(parsing: row.url)
        #expect(endpoint.host == row.host)
        #expect(endpoint.port == row.port)
        #expect(endpoint.startTLS == row.startTLS)
        #expect(endpoint.url == row.canonical)
    }

    @Test(arguments: [
        "mail.example.com:25", "ftp://mail.example.com", "smtp://", "smtp://mail.example.com:0",
        "smtp://mail.example.com:65536", "tls://mail.example.com", "smtp://[2001:db8::1:25", "smtp://mail.example.com/inbox",
    ])
    func badURLsNeverReachTheProbe(_ url: String) {
        #expect(throws: VerifyEndpoint.ParseError.self) { try VerifyEndpoint(parsing: url) }
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", UInt16(25)), ("::1", "::1", 25), ("[::1]", "::1", 25), ("mx.internal", "mx.internal", 25),
    ])
    func connectOverride(_ text: String, _ host: String, _ port: UInt16) throws {
        let target = try #require(DialTarget(connect: text, defaultPort: 25))
        #expect(target.host == host)
        #expect(target.port == port)
    }

    /// The port is the verify URL's: the loader refuses `connect` with a port, and so does the probe.
    @Test(arguments: ["", "127.0.0.1:", "127.0.0.1:x", "[::1", "[nope]:25", "a b", "127.0.0.1:2525", "[::1]:587", "mx.internal."])
    func badConnectOverride(_ text: String) {
        #expect(DialTarget(connect: text, defaultPort: 25) == nil)
    }

    @Test func shaNormalisation() {
        #expect(Verifier.normalized("AB:CD") == "abcd")
        #expect(Verifier.normalized("ab cd") == "abcd")
    }
}
