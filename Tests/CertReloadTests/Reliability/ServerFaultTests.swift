@testable import CertReload
import CertReloadDemo
import Glibc
import Logging
import Testing

/// Faults in the servers certreload reloads (issue 11): each HTTP-based reload kind against
/// each fault of Tests/Support/hostile_server.py, through the whole pipeline (check, reload).
/// Each must end within its bound with its stable code, and close every connection it opened.
@Suite("Reliability: faults in the reload servers")
struct ServerFaultTests {
    static let kinds = ["stalwart-jmap", "stalwart-rest", "caddy", "http"]
    static let faults = [
        "refused", "silent", "read-no-answer", "status:500", "status:401", "status:403", "redirect", "not-json",
        "truncated-json", "huge-body", "tls-untrusted", "tls-expired", "tls-wrong-name", "tls-close-mid-handshake",
        "control-ok", "control-tls-ok",
    ]
    /// The reload's time bound in these tests (30 s in production).
    static let bound = 2.0

    /// The expected problem code, or "ok".
    static func expected(kind: String, fault: String) -> String {
        switch fault {
        case "refused", "tls-untrusted", "tls-expired", "tls-wrong-name", "tls-close-mid-handshake": return "reload-unreachable"
        case "silent", "read-no-answer": return "reload-timeout"
        case "status:401", "status:403": return "reload-unauthorized"
        // Caddy's protocol is satisfied by any JSON configuration and a 200 to /load.
        case "control-ok", "control-tls-ok": return kind == "http" || kind == "caddy" ? "ok" : "reload-failed"
        case "not-json": return kind == "http" ? "ok" : "reload-failed"
        case "huge-body": return kind == "http" ? "ok" : "reload-failed"
        default: return "reload-failed"
        }
    }

    @Test("a reload server fault ends in time with its code, and no connection is left open", arguments: kinds, faults)
    func serverFault(kind: String, fault: String) async throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("c.test")
        let tls = try TLSMaterial(fixture)
        let mode: String
        var extra: [String] = []
        switch fault {
        case "refused": mode = "refused"
        case "control-ok": mode = "ok"
        case "control-tls-ok": mode = "tls:ok"; extra = tls.serve(.good)
        case "tls-untrusted": mode = "tls:ok"; extra = tls.serve(.selfSigned)
        case "tls-expired": mode = "tls:ok"; extra = tls.serve(.expired)
        case "tls-wrong-name": mode = "tls:ok"; extra = tls.serve(.wrongName)
        case "tls-close-mid-handshake": mode = fault
        default: mode = fault
        }
        let server = mode == "refused" ? nil : try HostileServer(mode: mode, extra: extra)
        defer { server?.stop() }
        let port = server?.port ?? refusedPort()
        let scheme = fault.hasPrefix("tls") || fault == "control-tls-ok" ? "https://localhost" : "http://127.0.0.1"
        let url = "\(scheme):\(port)"
        let token = fixture.root + "/token"
        // The key shape each API takes: 0.16/1.0 JMAP keys are API_ + base64url; 0.15's REST takes
        // api_ + base64("name:secret"). Both contain base64("fault-secret-token"), checked below.
        let secret = kind == "stalwart-rest" ? "api_ZmF1bHQ6ZmF1bHQtc2VjcmV0LXRva2Vu" : "API_ZmF1bHQtc2VjcmV0LXRva2VuZmF1bHQtc2Vjcm"
        try writeBytes(token, Array((secret + "\n").utf8), mode: 0o600)
        let reload: String
        switch kind {
        case "stalwart-jmap": reload = "{ stalwart = \"\(url)\", api = \"jmap\", token-file = \"\(token)\" }"
        case "stalwart-rest": reload = "{ stalwart = \"\(url)\", api = \"rest\", token-file = \"\(token)\" }"
        case "caddy": reload = "{ caddy = \"\(url)\" }"
        default: reload = "{ http = \"\(url)/reload\", token-file = \"\(token)\" }"
        }
        let text = """
            certbot-dir = "\(fixture.config)"
            state-dir = "\(fixture.root)/state"
            [target.t]
            lineages = ["c.test"]
            ca-file = "\(tls.caFile)"
            reload = \(reload)
            """
        let validation = ConfigurationLoader.validate(text, path: fixture.root + "/certreload.toml")
        let configuration = try #require(validation.configuration, "\(validation.errors)")
        let capture = CapturedLog()
        var pipeline = TargetPipeline(configuration: configuration, target: configuration.targets[0], logger: capture.logger)
        pipeline.reloadTimeout = Self.bound
        let started = Monotonic.now
        let outcome = await pipeline.run(.reload(force: true, dryRun: false))
        let elapsed = Monotonic.now - started
        let want = Self.expected(kind: kind, fault: fault)
        let codes = outcome.problems.filter { $0.severity == .error }.map(\.code.rawValue)
        if want == "ok" {
            #expect(outcome.succeeded, "\(outcome.problems.map { "[\($0.code.rawValue)] \($0.message)" })")
        } else {
            #expect(codes.first == want, "\(outcome.problems.map { "[\($0.code.rawValue)] \($0.message)" })")
            #expect(!outcome.succeeded)
        }
        // The bound: the reload's timeout, plus the check and a margin for a loaded machine.
        #expect(elapsed < Self.bound + 3, "took \(elapsed) s")
        if let server {
            #expect(server.clientConnectionsOpen() == "", "certreload closed every connection it opened")
        }
        let everything = outcome.text + capture.text
        #expect(!everything.contains("ZmF1bHQtc2VjcmV0LXRva2Vu"), "the token never appears")
        #expect(everything.count < 20_000, "a 50 MB answer is not copied into the report")
        FaultLedger.record("reload \(kind)", fault, outcome: want == "ok" ? "ok" : codes.first ?? "none", seconds: elapsed)
    }

    @Test("insecure = true reaches an untrusted endpoint, and every request warns in the output and the log")
    func insecureEndpoint() async throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("c.test")
        let tls = try TLSMaterial(fixture)
        let server = try HostileServer(mode: "tls:ok", extra: tls.serve(.selfSigned))
        defer { server.stop() }
        let text = """
            certbot-dir = "\(fixture.config)"
            state-dir = "\(fixture.root)/state"
            [target.t]
            lineages = ["c.test"]
            insecure = true
            reload = { http = "https://localhost:\(server.port)/reload" }
            """
        let validation = ConfigurationLoader.validate(text, path: fixture.root + "/certreload.toml")
        let configuration = try #require(validation.configuration, "\(validation.errors)")
        #expect(configuration.targets[0].endpointTrust == .unverified)
        let capture = CapturedLog()
        var pipeline = TargetPipeline(configuration: configuration, target: configuration.targets[0], logger: capture.logger)
        pipeline.reloadTimeout = Self.bound
        var logged: Set<String> = []
        for run in 1...2 {
            let started = Monotonic.now
            let outcome = await pipeline.run(.reload(force: true, dryRun: false))
            // As watch logs a run: findings of the run before are not repeated; this warning is.
            logged = OutcomeLog(logger: capture.logger).log(outcome, alreadyLogged: logged)
            #expect(outcome.succeeded, "\(outcome.problems.map { "[\($0.code.rawValue)] \($0.message)" })")
            let warnings = outcome.problems.filter { $0.code == .tlsVerificationOff }
            #expect(warnings.count == 1 && warnings[0].severity == .warning)
            #expect(outcome.text.contains("[tls-verification-off]"))
            #expect(capture.text.ranges(of: "TLS verification of the reload endpoint").count == run,
                    "one warning in the log per request")
            if run == 1 { FaultLedger.record("reload http", "tls-untrusted, insecure = true", outcome: "ok, tls-verification-off", seconds: Monotonic.now - started) }
        }
        #expect(server.clientConnectionsOpen() == "")
    }
}

/// Certificates for the hostile server's TLS modes, all from the fixture's CA except the
/// self-signed one.
struct TLSMaterial {
    enum Kind { case good, selfSigned, expired, wrongName }
    let root: String
    let caFile: String

    init(_ fixture: LineageFixture) throws {
        root = fixture.root + "/tls"
        mkdir(root, 0o755)
        caFile = root + "/ca.pem"
        try writeFile(caFile, fixture.ca.root.pem)
        let now = fixture.now
        for (name, names, notBefore, notAfter, selfSigned) in [
            ("good", ["localhost", "127.0.0.1"], now - 3600, now + 86_400, false),
            ("selfSigned", ["localhost", "127.0.0.1"], now - 3600, now + 86_400, true),
            ("expired", ["localhost", "127.0.0.1"], now - 10 * 86_400, now - 86_400, false),
            ("wrongName", ["other.example"], now - 3600, now + 86_400, false),
        ] {
            let key = try CertificateFactory.makeKey(.ecdsaP256)
            let leaf = try CertificateFactory.makeCertificate(
                commonName: names[0], subjectAltNames: names, key: key,
                issuer: selfSigned ? nil : (fixture.ca.intermediate, fixture.ca.intermediateKey),
                notBefore: notBefore, notAfter: notAfter)
            try writeFile(root + "/\(name).pem", leaf.pem + (selfSigned ? "" : fixture.ca.intermediate.pem))
            try writeFile(root + "/\(name).key", key.pem(), mode: 0o600)
        }
    }

    func serve(_ kind: Kind, as option: String = "") -> [String] {
        let name = "\(kind)"
        return ["--cert", root + "/\(name).pem", "--key", root + "/\(name).key"]
    }
}

/// A logger that keeps every entry, to search for secrets (CapturingLogHandler's store).
struct CapturedLog {
    let store = CapturingLogHandler.Store()
    var logger: Logger { Logger(label: "certreload-test") { _ in CapturingLogHandler(store: store) } }
    var text: String {
        store.entries.withLock { $0.map { "\($0.0) \($0.1) \($0.2)" }.joined(separator: "\n") }
    }
}

/// Every fault injected in this run, with its outcome: written to $CERTRELOAD_FAULT_LEDGER
/// (one tab-separated line each) when set, for RELIABILITY.md.
enum FaultLedger {
    static let lock = Locked(())
    static func record(_ subject: String, _ fault: String, outcome: String, seconds: Double) {
        guard let path = getenv("CERTRELOAD_FAULT_LEDGER").map({ String(cString: $0) }) else { return }
        let line = "\(subject)\t\(fault)\t\(outcome)\t\(Int((seconds * 10).rounded()) / 10).\(Int((seconds * 10).rounded()) % 10)\n"
        lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
            close(fd)
        }
    }
}
