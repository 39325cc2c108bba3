import Testing

@testable import CertReload

@Suite("Probe: verify URLs")
struct ProbeURLTests {
    struct Good: Sendable, CustomTestStringConvertible {
        var url: String
        var scheme: VerifyEndpoint.Scheme
        var host: String
        var port: UInt16
        var startTLS: VerifyEndpoint.StartTLSDialog?
        var testDescription: String { url }
    }

    static let good: [Good] = [
        Good(url: "smtp://mail.example.com:25", scheme: .smtp, host: "mail.example.com", port: 25, startTLS: .smtp),
        Good(url: "smtp://mail.example.com", scheme: .smtp, host: "mail.example.com", port: 25, startTLS: .smtp),
        Good(url: "submission://mail.example.com", scheme: .submission, host: "mail.example.com", port: 587, startTLS: .smtp),
        Good(url: "smtps://mail.example.com", scheme: .smtps, host: "mail.example.com", port: 465, startTLS: nil),
        Good(url: "submissions://mail.example.com", scheme: .submissions, host: "mail.example.com", port: 465, startTLS: nil),
        Good(url: "imap://mail.example.com", scheme: .imap, host: "mail.example.com", port: 143, startTLS: .imap),
        Good(url: "imaps://mail.example.com", scheme: .imaps, host: "mail.example.com", port: 993, startTLS: nil),
        Good(url: "pop3://mail.example.com", scheme: .pop3, host: "mail.example.com", port: 110, startTLS: .pop3),
        Good(url: "pop3s://mail.example.com", scheme: .pop3s, host: "mail.example.com", port: 995, startTLS: nil),
        Good(url: "https://www.example.com", scheme: .https, host: "www.example.com", port: 443, startTLS: nil),
        Good(url: "https://www.example.com:8443/status?x=1", scheme: .https, host: "www.example.com", port: 8443, startTLS: nil),
        Good(url: "tls://db.example.com:5432", scheme: .tls, host: "db.example.com", port: 5432, startTLS: nil),
        Good(url: "SMTP://Mail.Example.COM:2525/", scheme: .smtp, host: "mail.example.com", port: 2525, startTLS: .smtp),
        Good(url: "smtp://[2001:db8::1]:25", scheme: .smtp, host: "2001:db8::1", port: 25, startTLS: .smtp),
        Good(url: "imaps://[::1]", scheme: .imaps, host: "::1", port: 993, startTLS: nil),
        Good(url: "pop3://192.0.2.7:1110", scheme: .pop3, host: "192.0.2.7", port: 1110, startTLS: .pop3),
        Good(url: "smtp://mail.example.com.:25", scheme: .smtp, host: "mail.example.com", port: 25, startTLS: .smtp),
    ]

    @Test(arguments: good)
    func parses(_ row: Good) throws {
        let endpoint = try VerifyEndpoint(parsing: row.url)
        #expect(endpoint.url == row.url)
        #expect(endpoint.scheme == row.scheme)
        #expect(endpoint.host == row.host)
        #expect(endpoint.port == row.port)
        #expect(endpoint.startTLS == row.startTLS)
    }

    static let bad: [(String, String)] = [
        ("mail.example.com:25", "scheme://host"),
        ("ftp://mail.example.com", "unknown scheme \"ftp\""),
        ("smtp://", "host is missing"),
        ("smtp://:25", "host is missing"),
        ("smtp://mail.example.com:0", "not a port number"),
        ("smtp://mail.example.com:65536", "not a port number"),
        ("smtp://mail.example.com:", "not a port number"),
        ("smtp://mail.example.com:2x5", "not a port number"),
        ("tls://mail.example.com", "tls scheme has no default port"),
        ("smtp://2001:db8::1:25", "must be written in brackets"),
        ("smtp://[2001:db8::1:25", "missing its \"]\""),
        ("smtp://[mail.example.com]:25", "not an IPv6 address"),
        ("smtp://[::1]25", "expected \":port\""),
        ("smtp://mail.example.com/inbox", "has no path"),
        ("smtp://mail example.com", "not a valid host name"),
        ("smtp://-bad-.example.com", "not a valid host name"),
        ("smtp://mail..example.com", "not a valid host name"),
    ]

    @Test(arguments: bad)
    func rejects(_ url: String, _ reason: String) {
        #expect {
            _ = try VerifyEndpoint(parsing: url)
        } throws: { error in
            guard let error = error as? VerifyEndpoint.ParseError else { return false }
            // The error names the URL and says what is wrong.
            return error.url == url && error.description.contains("\"\(url)\"") && error.reason.contains(reason)
        }
    }

    @Test func passwordIsNotEchoedAsHost() throws {
        let error = try #require(throws: VerifyEndpoint.ParseError.self) {
            try VerifyEndpoint(parsing: "smtp://user:secret@mail.example.com")
        }
        #expect(error.reason.contains("user names or passwords"))
        #expect(!error.description.contains("secret"))
        #expect(error.description.contains("mail.example.com"))
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", UInt16(25)), ("127.0.0.1:2525", "127.0.0.1", 2525), ("[::1]:587", "::1", 587),
        ("::1", "::1", 25), ("[::1]", "::1", 25), ("mx.internal", "mx.internal", 25),
    ])
    func connectOverride(_ text: String, _ host: String, _ port: UInt16) throws {
        let target = try #require(DialTarget(connect: text, defaultPort: 25))
        #expect(target.host == host)
        #expect(target.port == port)
    }

    @Test(arguments: ["", "127.0.0.1:", "127.0.0.1:x", "[::1", "[nope]:25", "a b"])
    func badConnectOverride(_ text: String) {
        #expect(DialTarget(connect: text, defaultPort: 25) == nil)
    }

    @Test func forTargetBuildsOneVerifierPerURL() throws {
        var target = TargetConfiguration(
            name: "mail", location: ConfigLocation(file: "certreload.toml", line: 3, key: "target.mail"),
            reload: .systemd(unit: "stalwart.service", mode: .reload))
        target.verify = ["smtp://mail.example.com", "imaps://mail.example.com"]
        target.connect = "127.0.0.1"
        target.verifyTimeout = 3
        target.probeWithoutSNI = true
        let verifiers = try Verifier.forTarget(target, expectedSHA256: "AB:CD")
        #expect(verifiers.map(\.endpoint.port) == [25, 993])
        #expect(verifiers.allSatisfy { $0.connect == "127.0.0.1" && $0.timeout == 3 && $0.probeWithoutSNI })
        #expect(Verifier.normalized("AB:CD") == "abcd")

        target.verify.append("gopher://x")
        #expect(throws: VerifyEndpoint.ParseError.self) { try Verifier.forTarget(target, expectedSHA256: "ab") }
    }
}
