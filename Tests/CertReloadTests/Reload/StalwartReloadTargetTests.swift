#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import CertReload

/// A Python script from Tests/Support serving HTTP on loopback for one test: it prints its
/// port (and maybe one JSON line) and records every request it receives.
final class ScriptServer {
    let directory: TemporaryDirectory
    let process: TestProcess
    let port: UInt16
    /// The second stdout line, when the script prints one (the stand-in's credentials).
    let announcement: JSON?
    var url: String { "http://127.0.0.1:\(port)" }

    init(script: String, _ arguments: [String], announces: Bool = false) throws {
        directory = try TemporaryDirectory("certreload-\(script.prefix(while: { $0 != "." }))")
        process = try TestProcess(
            ["python3", testSupportDirectory() + "/" + script, "--record", directory.file("requests.jsonl"),
             "--lifetime", "120"] + arguments,
            stderrPath: directory.file("stderr.log"))
        guard let line = try process.readLine(timeout: 15), let port = UInt16(line) else {
            throw TestSupportError("\(script) did not print its port: \(directory.read("stderr.log"))")
        }
        self.port = port
        if announces {
            guard let line = try process.readLine(timeout: 15) else {
                throw TestSupportError("\(script) did not print its credentials: \(directory.read("stderr.log"))")
            }
            announcement = try JSONParser.parse(line)
        } else {
            announcement = nil
        }
    }

    /// Tests/Support/http_hook_server.py: a generic endpoint for the HTTP reload target.
    convenience init(hook arguments: [String]) throws {
        try self.init(script: "http_hook_server.py", arguments)
    }

    /// What it received, in order: (method, path, headers, body).
    func requests() throws -> [(method: String, path: String, headers: [(String, String)], body: String)] {
        try directory.read("requests.jsonl").split(separator: "\n").map { line in
            let json = try JSONParser.parse(String(line))
            let headers = (json[member: "headers"].flatMap { value -> [JSON]? in
                if case .array(let items) = value { return items }
                return nil
            } ?? []).map { ($0[element: 0]?.stringValue ?? "", $0[element: 1]?.stringValue ?? "") }
            return (json[member: "method"]?.stringValue ?? "", json[member: "path"]?.stringValue ?? "", headers,
                    json[member: "body"]?.stringValue ?? "")
        }
    }

    /// A secret file (mode 0600) in the server's directory.
    func tokenFile(_ token: String) throws -> SecretSource {
        .file(try directory.write("token-\(token.count)-\(Int.random(in: 0...999_999))", token + "\n"))
    }
}

/// Tests/Support/stalwart_standin.py: Stalwart's answers as its source gives them, per version.
final class StalwartStandIn {
    let server: ScriptServer
    var url: String { server.url }

    init(
        _ version: String, apiKeys: [String] = [], users: [String] = [], certificates: [String] = [],
        listeners: [String] = [], defaultCertificate: String? = nil, extra: [String] = []
    ) throws {
        var arguments = ["--version", version]
        for key in apiKeys { arguments += ["--api-key", key] }
        for user in users { arguments += ["--user", user] }
        for certificate in certificates { arguments += ["--certificate", certificate] }
        for listener in listeners { arguments += ["--listener", listener] }
        if let defaultCertificate { arguments += ["--default-certificate", defaultCertificate] }
        server = try ScriptServer(script: "stalwart_standin.py", arguments + extra, announces: true)
    }

    /// The API key the stand-in created for `name`, as Stalwart would show it once.
    func apiKey(_ name: String) throws -> String {
        let header = try #require(server.announcement?[member: name]?.stringValue)
        return String(header.dropFirst("Bearer ".count))
    }

    func apiKeyFile(_ name: String) throws -> SecretSource { try server.tokenFile(try apiKey(name)) }
    func passwordFile(_ password: String) throws -> SecretSource { try server.tokenFile(password) }
    func paths() throws -> [String] { try server.requests().map(\.path) }
}

func reloadContext(timeout: Double = 10) -> ReloadContext {
    ReloadContext(logger: Logger(label: "certreload.test"), timeout: timeout)
}

/// Runs a reload that must fail and returns its error.
func reloadError(_ target: some ReloadTarget, timeout: Double = 10) async throws -> ReloadError {
    let line: String
    do {
        line = try await target.reload(context: reloadContext(timeout: timeout))
    } catch {
        return error
    }
    throw TestSupportError("reload succeeded unexpectedly: \(line)")
}

/// A certificate and key on disk for the stand-in's certificate objects.
final class PEMFiles {
    let fixture: LineageFixture
    let name: String
    init(_ name: String = "mail.example.test", names: [String]? = nil) throws {
        fixture = try LineageFixture()
        self.name = name
        try fixture.issue(name, names: names)
    }
    var live: String { fixture.live(name) }
    var fullchain: String { live + "/fullchain.pem" }
    var privkey: String { live + "/privkey.pem" }
    /// "ID:file:FULLCHAIN:PRIVKEY" for `--certificate`.
    func object(_ id: String, _ kind: String = "file") -> String { "\(id):\(kind):\(fullchain):\(privkey)" }
    deinit { fixture.remove() }
}

let reloadPermissions = "sysActionCreate,actionReloadTlsCertificates"
let versions016 = ["0.16.10", "0.16.11", "1.0"]

@Suite("Stalwart reload against the stand-in, per version")
struct StalwartReloadTargetTests {
    @Test("0.16/1.0: an API_ key reloads over JMAP (auto); the request is the x:Action/set, the key only in Authorization",
          arguments: versions016)
    func jmapWithAPIKey(version: String) async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(version, apiKeys: ["ops:s3cret:\(reloadPermissions)"], certificates: [files.object("c1")])
        let key = try stalwart.apiKey("ops")
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, token: try stalwart.apiKeyFile("ops"))
        #expect(try await target.reload(context: reloadContext()).contains("reloaded its TLS certificates (JMAP)"))

        let requests = try stalwart.server.requests()
        try #require(requests.count == 1)
        #expect(requests[0].method == "POST")
        #expect(requests[0].path == "/jmap/")
        #expect(try JSONParser.parse(requests[0].body) == (try JSONParser.parse(StalwartReloadTarget.jmapBody)))
        #expect(requests[0].headers.contains { $0.0.lowercased() == "authorization" && $0.1 == "Bearer \(key)" })
        #expect(!requests[0].path.contains(key) && !requests[0].body.contains(key))
        #expect(!requests[0].headers.contains { $0.0.lowercased() != "authorization" && $0.1.contains(key) })
    }

    @Test("0.16/1.0: Basic credentials reload over JMAP (auto)", arguments: versions016)
    func jmapWithBasic(version: String) async throws {
        let stalwart = try StalwartStandIn(version, users: ["admin:pa55-w0rd:\(reloadPermissions)"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, username: "admin", password: try stalwart.passwordFile("pa55-w0rd"))
        #expect(try await target.reload(context: reloadContext()).contains("(JMAP)"))
        #expect(try stalwart.paths() == ["/jmap/"])
    }

    @Test("0.15: a Bearer api_ key goes straight to REST (0.15 refuses API keys on /jmap/)")
    func restWithLegacyKey() async throws {
        let stalwart = try StalwartStandIn("0.15", apiKeys: ["ops:s3cret:settings-reload"])
        #expect(try stalwart.apiKey("ops").hasPrefix("api_"))
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, token: try stalwart.apiKeyFile("ops"))
        #expect(try await target.reload(context: reloadContext()).contains("(REST)"))
        #expect(try stalwart.paths() == ["/api/reload/certificate"])
        // The same key with api = "jmap" is refused before anything is sent.
        let jmap = try StalwartReloadTarget(url: stalwart.url, api: .jmap, token: try stalwart.apiKeyFile("ops"))
        #expect(try await reloadError(jmap).code == .stalwartCredentialShape)
        #expect(try stalwart.paths().count == 1)
    }

    @Test("0.15: Basic in auto gets 400 notRequest on /jmap/ and falls back to REST")
    func autoFallsBackOnNotRequest() async throws {
        let stalwart = try StalwartStandIn("0.15", users: ["admin:pw-015:settings-reload"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, username: "admin", password: try stalwart.passwordFile("pw-015"))
        #expect(try await target.reload(context: reloadContext()).contains("(REST)"))
        let requests = try stalwart.server.requests()
        #expect(requests.map(\.path) == ["/jmap/", "/api/reload/certificate"])
        #expect(requests.last?.method == "GET")
    }

    @Test("0.15: a 401 on /jmap/ and a 401 on REST is final, naming both")
    func refusedByBoth() async throws {
        let stalwart = try StalwartStandIn("0.15", users: ["admin:right:settings-reload"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, username: "admin", password: try stalwart.passwordFile("wrong-pw"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("/jmap/ (401)"))
        #expect(error.message.contains("/api/reload/certificate"))
        #expect(try stalwart.paths() == ["/jmap/", "/api/reload/certificate"])
    }

    @Test("0.15: api = jmap does not fall back, and says to use rest")
    func jmapOnlyOn015() async throws {
        let stalwart = try StalwartStandIn("0.15", users: ["admin:pw:settings-reload"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .jmap, username: "admin", password: try stalwart.passwordFile("pw"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("notRequest"))
        #expect(error.fix?.contains("rest") == true)
        #expect(try stalwart.paths() == ["/jmap/"])
    }

    @Test("0.15: without settings-reload REST answers 403: reload-unauthorized naming the permission")
    func restForbidden() async throws {
        let stalwart = try StalwartStandIn("0.15", apiKeys: ["ops:s3cret:"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .rest, token: try stalwart.apiKeyFile("ops"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("403"))
        #expect(error.fix?.contains("settings-reload") == true)
    }

    @Test("0.15: a certificate error is quoted from its {type, error} object, and 0.15 keeps the old certificate")
    func restCertificateError() async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn("0.15", users: ["admin:pw:settings-reload"], certificates: [files.object("c1")])
        try writeFile(files.fixture.archive(files.name) + "/privkey1.pem", "not a key\n", mode: 0o600)
        let target = try StalwartReloadTarget(url: stalwart.url, api: .rest, username: "admin", password: try stalwart.passwordFile("pw"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("certificate.c1: No private keys found. (build)"), "\(error.message)")
        #expect(error.message.contains("keeps serving the certificate it had loaded before"))
        #expect(!error.message.contains("may be about another setting"))
    }

    @Test("0.15: an unreadable file is a macro error; a broken macro elsewhere is reported as such, not as a failed certificate")
    func restMacroErrors() async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn("0.15", users: ["admin:pw:settings-reload"], certificates: [files.object("c1")], extra: ["--broken-macro"])
        let target = try StalwartReloadTarget(url: stalwart.url, api: .rest, username: "admin", password: try stalwart.passwordFile("pw"))
        let line = try await target.reload(context: reloadContext())
        #expect(line.contains("other settings, not certificates: tracer.log.path: Failed to read file"), "\(line)")
        #expect(line.contains("may be about another setting"))

        unlink(files.fixture.archive(files.name) + "/privkey1.pem")
        let error = try await reloadError(target)
        #expect(error.message.contains("certificate.c1.private-key: Failed to read file"), "\(error.message)")
        #expect(error.message.contains("(macro)"))
        #expect(error.message.contains("may be about another setting"))
    }

    @Test("0.16/1.0: a certificate that fails is notCreated validationFailed; the message says what is served now",
          arguments: versions016)
    func jmapValidationFailed(version: String) async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(version, apiKeys: ["ops:k:\(reloadPermissions)"], certificates: [files.object("c1")])
        try writeFile(files.fixture.archive(files.name) + "/privkey1.pem", "not a key\n", mode: 0o600)
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, token: try stalwart.apiKeyFile("ops"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("(certificate object c1): validationFailed: Invalid certificate: No private keys found."), "\(error.message)")
        #expect(error.message.contains("rebuilt its certificate map without that certificate object"))
        #expect(try stalwart.paths() == ["/jmap/"])
    }

    @Test("0.16/1.0: without sysActionCreate the method is forbidden; without actionReloadTlsCertificates the action is",
          arguments: versions016)
    func jmapForbidden(version: String) async throws {
        let stalwart = try StalwartStandIn(version, apiKeys: ["none:a:", "half:b:sysActionCreate"])
        let none = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .jmap, token: try stalwart.apiKeyFile("none")))
        #expect(none.code == .reloadUnauthorized)
        #expect(none.message.contains("You are not authorized to create, update or destroy objects of this type"))
        #expect(none.fix?.contains("sysActionCreate") == true)
        let half = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .jmap, token: try stalwart.apiKeyFile("half")))
        #expect(half.code == .reloadUnauthorized)
        #expect(half.message.contains("Insufficient permissions to perform action of type ReloadTlsCertificates"))
        #expect(half.fix?.contains("actionReloadTlsCertificates") == true)
    }

    @Test("notCreated forbidden without the permission wording is not called a permissions problem")
    func forbiddenFromRegistryError() async throws {
        let failure = try JSONParser.parse(#"{"type":"forbidden","description":"Failed to read registry","objectId":{"object":"Certificate","id":"c9"}}"#)
        let error = StalwartReloadTarget.notCreated(failure, server: "Stalwart at x", redactor: Redactor(secrets: []))
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("not necessarily a missing permission"))
        #expect(error.message.contains("certificate object c9"))
    }

    /// FuzzJSON's second find (a CI run): the JMAP error `type` and the object id were quoted
    /// as the server sent them, so a server echoing the key in `type` got it into the message.
    @Test("every server-chosen word of a JMAP or REST answer is scrubbed of the credentials")
    func echoedSecretsInEveryField() async throws {
        let token = "API_ZnV6ei1zZWNyZXQtdG9rZW4"
        let stalwart = try StalwartReloadTarget(url: "http://127.0.0.1:8080")
        let request = HTTPRequest(method: "POST", endpoint: stalwart.endpoint, path: "/jmap/", authorization: .bearer(token: token))
        func answer(_ status: Int, _ body: String) -> HTTPResponse {
            HTTPResponse(status: status, headers: [], body: Array(body.utf8), truncated: false)
        }
        let echoes = [
            #"{"methodResponses":[["x:Action/set",{"notCreated":{"r1":{"type":"forbidpermissions \#(token)","objectId":{"id":"b"}}}},"c1"]]}"#,
            #"{"methodResponses":[["x:Action/set",{"notCreated":{"r1":{"type":"x","objectId":{"id":"\#(token)"}}}},"c1"]]}"#,
            #"{"methodResponses":[["error",{"type":"\#(token)"},"c1"]]}"#,
        ]
        for body in echoes {
            do {
                _ = try stalwart.jmapAnswer(answer(200, body), to: request)
                Issue.record("accepted \(body)")
            } catch {
                #expect(!error.message.contains(token), "\(error.message)")
                #expect(error.message.contains("[redacted]"), "\(error.message)")
            }
        }
        let notRequest = #"{"type":"urn:ietf:params:jmap:error:\#(token)unknownCapability","detail":"x"}"#
        if case .notSupported(let why) = try stalwart.jmapAnswer(answer(400, notRequest), to: request) {
            #expect(!why.contains(token), "\(why)")
        } else {
            Issue.record("a 400 unknownCapability was not taken for a missing JMAP reload")
        }
        // REST: keys and types of the errors object too, and a thousand of them stay one bounded message.
        var entries = [#""\#(token)":{"type":"\#(token)","error":"x"}"#]
        entries += (0..<1000).map { #""certificate.c\#($0)":{"type":"build","error":"unreadable"}"# }
        let rest = #"{"data":{"warnings":{},"errors":{\#(entries.joined(separator: ","))}}}"#
        do {
            _ = try stalwart.restAnswer(answer(200, rest), to: request)
            Issue.record("a REST answer with errors was taken for a reload")
        } catch {
            #expect(!error.message.contains(token))
            #expect(error.message.contains("1000 certificate error(s)"))
            #expect(error.message.contains("and 992 more"), "\(error.message.prefix(400))")
            #expect(error.message.utf8.count < 8192)
        }
    }

    @Test("0.16/1.0: a wrong API_ key is refused on /jmap/ and that is final (no REST to try)", arguments: versions016)
    func wrongAPIKey(version: String) async throws {
        let stalwart = try StalwartStandIn(version, apiKeys: ["ops:right:\(reloadPermissions)"])
        let wrong = "API_" + String(try stalwart.apiKey("ops").dropFirst(4).reversed())
        let target = try StalwartReloadTarget(url: stalwart.url, api: .auto, token: try stalwart.server.tokenFile(wrong))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("401"))
        #expect(error.fix?.contains("sysActionCreate") == true)
        #expect(!error.message.contains(wrong))
        #expect(try stalwart.paths() == ["/jmap/"])
    }

    @Test("0.16/1.0: no credentials is reload-unauthorized saying none were configured", arguments: versions016)
    func noCredentials(version: String) async throws {
        let stalwart = try StalwartStandIn(version)
        let error = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .auto))
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("no credentials"))
    }

    @Test("0.16/1.0: api = rest answers 404 (REST reload is gone); an API_ key there is refused before sending",
          arguments: versions016)
    func restOn016(version: String) async throws {
        let stalwart = try StalwartStandIn(version, apiKeys: ["ops:k:\(reloadPermissions)"], users: ["admin:pw:\(reloadPermissions)"])
        let basic = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .rest, username: "admin", password: try stalwart.passwordFile("pw")))
        #expect(basic.code == .reloadFailed)
        #expect(basic.message.contains("404"))
        let key = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .rest, token: try stalwart.apiKeyFile("ops")))
        #expect(key.code == .stalwartCredentialShape)
        #expect(try stalwart.paths() == ["/api/reload/certificate"])
    }

    @Test("a token of the wrong shape is refused before anything is sent, without quoting it",
          arguments: ["Bearer API_AAAAAQAAAAHdM6CEuiI90jGwqpYvd6WSABe8iw", "eyJhbGciOi.not-a-key.sig", "API_tooShort",
                      "api_!!!notbase64", "api_" + Redactor.base64(Array("no-colon-here".utf8)), "two words"])
    func wrongShape(token: String) async throws {
        let stalwart = try StalwartStandIn("1.0")
        let error = try await reloadError(try StalwartReloadTarget(url: stalwart.url, api: .auto, token: try stalwart.server.tokenFile(token)))
        #expect(error.code == .stalwartCredentialShape)
        #expect(!error.message.contains(token) && !(error.fix ?? "").contains(token))
        #expect(try stalwart.server.requests().isEmpty)
    }

    @Test("a closed port is reload-unreachable with curl's words")
    func closedPort() async throws {
        let port = try Loopback.freePort()
        let target = try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", api: .auto)
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnreachable)
        #expect(error.message.contains("127.0.0.1:\(port)"))
        #expect(error.message.contains("curl:"))
    }

    @Test("a server that never answers is reload-timeout within the configured bound")
    func neverAnswers() async throws {
        // Listening but never accepting: the kernel completes the handshake, nobody answers.
        let (fd, port) = try Loopback.bind(listen: true)
        defer { close(fd) }
        let target = try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", api: .auto)
        let started = monotonicSeconds()
        let error = try await reloadError(target, timeout: 1.5)
        let elapsed = monotonicSeconds() - started
        #expect(error.code == .reloadTimeout)
        #expect(elapsed >= 1.4)
        #expect(elapsed < 15, "bounded by the reload timeout (took \(elapsed) s)")
    }
}

@Suite("Secrets stay out of messages")
struct SecretRedactionTests {
    static let key = "API_" + String(repeating: "Ab9-", count: 9) + "xY"

    @Test("a server that echoes the Authorization header back does not put the key in the error")
    func echoedBearerToken() async throws {
        let hook = try ScriptServer(hook: ["--token", "the-right-one", "--echo-auth"])
        let target = try StalwartReloadTarget(url: hook.url, api: .auto, token: try hook.tokenFile(Self.key))
        let error = try await reloadError(target)
        // The server did echo it (so the test can fail) …
        #expect(try hook.requests().contains { $0.headers.contains { $0.1.contains(Self.key) } })
        #expect(error.message.contains("[redacted]"), "\(error.message)")
        // … and it is in no part of the error.
        #expect(!error.message.contains(Self.key))
        #expect(!(error.fix ?? "").contains(Self.key))
        #expect(!"\(error)".contains(Self.key))
    }

    @Test("Basic credentials echoed back are redacted, both the password and the base64 form")
    func echoedBasic() async throws {
        let hook = try ScriptServer(hook: ["--basic", "admin:right", "--echo-auth"])
        let target = try StalwartReloadTarget(url: hook.url, api: .jmap, username: "admin", password: try hook.tokenFile("wrong-pw-xyz"))
        let error = try await reloadError(target)
        #expect(!error.message.contains("wrong-pw-xyz"))
        #expect(!error.message.contains(Redactor.base64(Array("admin:wrong-pw-xyz".utf8))))
    }

    @Test("transport errors never carry the token", arguments: [false, true])
    func transportErrors(timeout: Bool) async throws {
        let directory = try TemporaryDirectory()
        let tokenFile = SecretSource.file(try directory.write("token", Self.key))
        let error: ReloadError
        if timeout {
            let (fd, port) = try Loopback.bind(listen: true)
            defer { close(fd) }
            error = try await reloadError(try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", token: tokenFile), timeout: 0.5)
        } else {
            let port = try Loopback.freePort()
            error = try await reloadError(try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", token: tokenFile))
        }
        #expect(error.code == (timeout ? .reloadTimeout : .reloadUnreachable))
        #expect(!error.message.contains(Self.key))
        #expect(!(error.fix ?? "").contains(Self.key))
    }

    @Test("a URL with credentials in it is refused without repeating them")
    func credentialsInURL() async throws {
        #expect(throws: ReloadError.self) { try HTTPEndpoint("https://admin:hunter2@mail.example.com") }
        do {
            _ = try HTTPEndpoint("https://admin:hunter2@mail.example.com")
        } catch {
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test("a world-readable token file is refused before any request")
    func worldReadableToken() async throws {
        let stalwart = try StalwartStandIn("1.0")
        let path = try stalwart.server.directory.write("loose-token", Self.key + "\n", mode: 0o644)
        let error = try await reloadError(try StalwartReloadTarget(url: stalwart.url, token: .file(path)))
        #expect(error.code == .tokenFileInsecure)
        #expect(try stalwart.server.requests().isEmpty)
    }
}
