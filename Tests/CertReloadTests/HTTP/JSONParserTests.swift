import Testing
@testable import CertReload
@testable import CertReloadDemo

@Suite("JSON parser")
struct JSONParserTests {
    @Test("reads what the writer writes")
    func roundTrip() throws {
        let value = JSON.object([
            ("a", .array([.int(1), .int(-20), .bool(true), .bool(false), .null])),
            ("text", .string("quote \" backslash \\ newline \n tab \t control \u{01} é 😀")),
            ("empty", .object([])), ("list", .array([])),
        ])
        #expect(try JSONParser.parse(value.serialized()) == value)
        #expect(try JSONParser.parse(value.serialized(pretty: true)) == value)
    }

    @Test("escapes, surrogate pairs, numbers")
    func details() throws {
        #expect(try JSONParser.parse(#""\u00e9\ud83d\ude00\/""#) == .string("é😀/"))
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONParser.parse("1.5e3") == .string("1.5e3"))
        #expect(try JSONParser.parse(" {\"k\" : [ 1 , 2 ] } ")[member: "k"]?[element: 1] == .int(2))
    }

    @Test("refuses what is not JSON", arguments: ["", "{", "[1,]", "{\"a\":1,}", "01", "\"\\x\"", "tru", "1 2", "\"\u{01}\"", "\"\\ud800\""])
    func invalid(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test("refuses absurd nesting instead of overflowing the stack")
    func depth() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(String(repeating: "[", count: 100_000)) }
    }
}

@Suite("HTTP endpoints and redaction")
struct HTTPEndpointTests {
    @Test("parses TCP and unix endpoints")
    func endpoints() throws {
        let tcp = try HTTPEndpoint("https://mail.example.com:8443/")
        #expect(tcp.url("/jmap/") == "https://mail.example.com:8443/jmap/")
        #expect(tcp.unixSocket == nil)
        let socket = try HTTPEndpoint("unix:/run/caddy/admin.sock")
        #expect(socket.unixSocket == "/run/caddy/admin.sock")
        #expect(socket.description == "unix:/run/caddy/admin.sock")
        #expect(throws: ReloadError.self) { try HTTPEndpoint("ftp://example.com") }
        #expect(throws: ReloadError.self) { try HTTPEndpoint("unix:relative.sock") }
    }

    @Test("redacts user info and query strings")
    func redact() {
        #expect(HTTPEndpoint.redact("https://u:p@host:1/x?token=abc") == "https://host:1/x")
    }

    @Test("the redactor removes every secret and keeps one bounded line")
    func redactor() {
        let redactor = Redactor(secrets: ["s3cret"])
        #expect(redactor.excerpt("a\n  s3cret\tb") == "a [redacted] b")
        #expect(redactor.excerpt(String(repeating: "x", count: 1000)).count <= 301)
        #expect(Redactor.base64(Array("admin:pw".utf8)) == "YWRtaW46cHc=")
    }

    /// FuzzJSON's first find: the excerpt dropped control characters after scrubbing, so a
    /// token echoed with NULs and DEL inside came out whole in a reload-unauthorized message.
    @Test("a secret split by control characters or folded spaces does not come back together")
    func redactorJoinedPieces() {
        let token = "API_ZnV6ei1zZWNyZXQtdG9rZW4"
        let redactor = Redactor(secrets: [token, "two  spaces"])
        let echoed = #"{"detail":"You have to authenticate first. API_ZnV6e\#u{0}\#u{0}\#u{0}\#u{7f}i1zZWNyZXQtdG9rZW4"}"#
        let excerpt = redactor.excerpt(echoed)
        #expect(!excerpt.contains(token), "\(excerpt)")
        #expect(excerpt.contains("[redacted]"))
        #expect(redactor.excerpt("pw: two \t spaces!") == "pw: [redacted]!")
        #expect(redactor.excerpt("say API_ZnV6ei1zZWNyZXQtdG9rZW4 again") == "say [redacted] again")
    }
}
