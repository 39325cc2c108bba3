#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import CertReload
@testable import CertReloadDemo

/// Tests/Support/fake_stalwart.py, running on loopback for one test.
final class FakeStalwart {
    let directory: TemporaryDirectory
    let process: TestProcess
    let port: UInt16
    var url: String { "http://127.0.0.1:\(port)" }

    init(_ arguments: [String]) throws {
        directory = try TemporaryDirectory("certreload-fake-stalwart")
        process = try TestProcess(
            ["python3", testSupportDirectory() + "/fake_stalwart.py", "--record", directory.file("requests.jsonl"),
             "--lifetime", "120"] + arguments,
            stderrPath: directory.file("stderr.log"))
        guard let line = try process.readLine(timeout: 15), let port = UInt16(line) else {
            throw TestSupportError("fake_stalwart.py did not print its port: \(directory.read("stderr.log"))")
        }
        self.port = port
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

    /// A token file (mode 0600) in the fake's directory.
    func tokenFile(_ token: String) throws -> SecretSource {
        .file(try directory.write("token-\(token.count)-\(Int.random(in: 0...999_999))", token + "\n"))
    }
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

@Suite("Stalwart reload against a fake Stalwart")
struct StalwartReloadTargetTests {
    static let token = "s3cr3t-api-key-7f9c2b"

    @Test("JMAP: created.r1 is success, the request is the documented x:Action/set with the bearer token")
    func jmapSuccess() async throws {
        let fake = try FakeStalwart(["--jmap", "ok", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap, token: try fake.tokenFile(Self.token))
        let line = try await target.reload(context: reloadContext())
        #expect(line.contains("reloaded its TLS certificates (JMAP)"))

        let requests = try fake.requests()
        try #require(requests.count == 1)
        #expect(requests[0].method == "POST")
        #expect(requests[0].path == "/jmap/")
        let body = try JSONParser.parse(requests[0].body)
        #expect(body == (try JSONParser.parse(StalwartReloadTarget.jmapBody)))
        #expect(requests[0].headers.contains { $0.0.lowercased() == "authorization" && $0.1 == "Bearer \(Self.token)" })
        // The token travels only in the Authorization header.
        #expect(!requests[0].path.contains(Self.token))
        #expect(!requests[0].body.contains(Self.token))
        #expect(!requests[0].headers.contains { $0.0.lowercased() != "authorization" && $0.1.contains(Self.token) })
    }

    @Test("JMAP: notCreated.r1 is reload-failed carrying the server's type and description")
    func jmapNotCreated() async throws {
        let fake = try FakeStalwart(["--jmap", "notcreated", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .auto, token: try fake.tokenFile(Self.token))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("invalidPatch"))
        #expect(error.message.contains("Failed to load certificate 'default': No private key found in PEM"))
        // A refusal of the certificate is not a reason to try REST.
        #expect(try fake.requests().map(\.path) == ["/jmap/"])
    }

    @Test("JMAP: notCreated.r1 forbidden is reload-unauthorized naming the permissions")
    func jmapForbidden() async throws {
        let fake = try FakeStalwart(["--jmap", "forbidden", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap, token: try fake.tokenFile(Self.token))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.fix?.contains("actionReloadTlsCertificates") == true)
    }

    @Test("auto falls back to REST when the server has no JMAP reload", arguments: ["unknown-method", "unknown-capability", "absent"])
    func autoFallback(jmap: String) async throws {
        let fake = try FakeStalwart(["--jmap", jmap, "--rest", "ok", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .auto, token: try fake.tokenFile(Self.token))
        let line = try await target.reload(context: reloadContext())
        #expect(line.contains("(REST)"))
        let requests = try fake.requests()
        #expect(requests.map(\.path) == ["/jmap/", "/api/reload/certificate"])
        #expect(requests.last?.method == "GET")
    }

    @Test("api = jmap does not fall back, and says to use rest")
    func jmapOnlyNoFallback() async throws {
        let fake = try FakeStalwart(["--jmap", "unknown-method", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap, token: try fake.tokenFile(Self.token))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.fix?.contains("rest") == true)
        #expect(try fake.requests().count == 1)
    }

    @Test("REST: 200 with a non-empty errors object is a failure carrying each error")
    func restErrors() async throws {
        let fake = try FakeStalwart(["--rest", "errors", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .rest, token: try fake.tokenFile(Self.token))
        let error = try await reloadError(target)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("certificate.default: Failed to parse certificate: No certificates found in PEM"))
        #expect(try fake.requests().map(\.path) == ["/api/reload/certificate"])
    }

    @Test("REST: success reports warnings")
    func restWarnings() async throws {
        let fake = try FakeStalwart(["--rest", "warnings", "--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .rest, token: try fake.tokenFile(Self.token))
        let line = try await target.reload(context: reloadContext())
        #expect(line.contains("certificate.old: certificate expires in 3 days"))
    }

    @Test("Basic authentication with username and password-file")
    func basicAuth() async throws {
        let fake = try FakeStalwart(["--jmap", "ok", "--basic", "admin:pa55-w0rd"])
        let password = try fake.tokenFile("pa55-w0rd")
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap, username: "admin", password: password)
        #expect(try await target.reload(context: reloadContext()).contains("JMAP"))
        let wrong = try StalwartReloadTarget(url: fake.url, api: .jmap, username: "admin", password: try fake.tokenFile("nope"))
        #expect(try await reloadError(wrong).code == .reloadUnauthorized)
    }

    @Test("a wrong token is reload-unauthorized with the permissions to grant, in JMAP and in auto (no fallback)",
          arguments: [ReloadConfiguration.StalwartAPI.jmap, .auto, .rest])
    func wrongToken(api: ReloadConfiguration.StalwartAPI) async throws {
        let fake = try FakeStalwart(["--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: api, token: try fake.tokenFile("wrong-token-abc"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("401"))
        if api != .rest {
            #expect(error.fix?.contains("sysActionCreate") == true)
            #expect(error.fix?.contains("actionReloadTlsCertificates") == true)
        }
        #expect(try fake.requests().count == 1)
    }

    @Test("no credentials at all: reload-unauthorized that says none were configured")
    func noCredentials() async throws {
        let fake = try FakeStalwart(["--token", Self.token])
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap)
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(error.message.contains("no credentials"))
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
    @Test("a server that echoes the Authorization header back does not put the token in the error")
    func echoedBearerToken() async throws {
        let token = "tok-ECHOED-1234567890"
        let fake = try FakeStalwart(["--token", "the-right-one", "--echo-auth"])
        let target = try StalwartReloadTarget(url: fake.url, api: .auto, token: try fake.tokenFile(token))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        // The fake did echo it (so the test can fail) …
        #expect(try fake.requests().contains { $0.headers.contains { $0.1.contains(token) } })
        #expect(error.message.contains("[redacted]"))
        // … and it is in no part of the error.
        #expect(!error.message.contains(token))
        #expect(!(error.fix ?? "").contains(token))
        #expect(!"\(error)".contains(token))
    }

    @Test("Basic credentials echoed back are redacted, both the password and the base64 form")
    func echoedBasic() async throws {
        let fake = try FakeStalwart(["--basic", "admin:right", "--echo-auth"])
        let target = try StalwartReloadTarget(url: fake.url, api: .jmap, username: "admin", password: try fake.tokenFile("wrong-pw-xyz"))
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(!error.message.contains("wrong-pw-xyz"))
        #expect(!error.message.contains(Redactor.base64(Array("admin:wrong-pw-xyz".utf8))))
    }

    @Test("transport errors never carry the token", arguments: [false, true])
    func transportErrors(timeout: Bool) async throws {
        let directory = try TemporaryDirectory()
        let token = "tok-TRANSPORT-0987"
        let tokenFile = SecretSource.file(try directory.write("token", token))
        let error: ReloadError
        if timeout {
            let (fd, port) = try Loopback.bind(listen: true)
            defer { close(fd) }
            error = try await reloadError(try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", token: tokenFile), timeout: 0.5)
        } else {
            let port = try Loopback.freePort()
            error = try await reloadError(try StalwartReloadTarget(url: "http://127.0.0.1:\(port)", token: tokenFile))
        }
        #expect(!error.message.contains(token))
        #expect(!(error.fix ?? "").contains(token))
    }

    @Test("a URL with credentials in it is refused without repeating them")
    func credentialsInURL() throws {
        #expect(throws: ReloadError.self) { try HTTPEndpoint("https://admin:hunter2@mail.example.com") }
        do {
            _ = try HTTPEndpoint("https://admin:hunter2@mail.example.com")
        } catch {
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test("a world-readable token file is refused before any request")
    func worldReadableToken() async throws {
        let fake = try FakeStalwart(["--token", "x"])
        let path = try fake.directory.write("loose-token", "x\n", mode: 0o644)
        let error = try await reloadError(try StalwartReloadTarget(url: fake.url, token: .file(path)))
        #expect(error.code == .tokenFileInsecure)
        #expect(try fake.requests().isEmpty)
    }
}
