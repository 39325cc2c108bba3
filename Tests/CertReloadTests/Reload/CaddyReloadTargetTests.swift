#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import CertReload
@testable import CertReloadDemo

/// A real Caddy (/usr/bin/caddy) on loopback, serving HTTPS from certbot-style files.
final class CaddyUnderTest {
    let directory: TemporaryDirectory
    let layout: CertbotLayoutWriter
    let ca: TestCA
    let httpsPort: UInt16
    /// `http://127.0.0.1:PORT` or `unix:/path`.
    let adminURL: String
    let process: TestProcess
    static let lineage = "caddy.test"
    static let hostName = "localhost"

    init(adminOnSocket: Bool) throws {
        directory = try TemporaryDirectory("certreload-caddy")
        ca = try TestCA(name: "certreload caddy test")
        layout = try CertbotLayoutWriter(configDirectory: directory.file("letsencrypt"))
        _ = try Self.issue(layout: layout, ca: ca, version: 1)
        httpsPort = try Loopback.freePort()
        let adminListen: String
        if adminOnSocket {
            let socket = directory.file("admin.sock")
            adminListen = "unix/\(socket)"
            adminURL = "unix:\(socket)"
        } else {
            let port = try Loopback.freePort()
            adminListen = "127.0.0.1:\(port)"
            adminURL = "http://127.0.0.1:\(port)"
        }
        let live = layout.liveDirectory(Self.lineage)
        let config = JSON.object([
            ("admin", .object([("listen", .string(adminListen)), ("config", .object([("persist", .bool(false))]))])),
            ("storage", .object([("module", .string("file_system")), ("root", .string(directory.file("caddy-data")))])),
            ("apps", .object([
                ("http", .object([("servers", .object([("test", .object([
                    ("listen", .array([.string("127.0.0.1:\(httpsPort)")])),
                    ("routes", .array([.object([("handle", .array([.object([
                        ("handler", .string("static_response")), ("body", .string("served by caddy")),
                    ])]))])])),
                    ("tls_connection_policies", .array([.object([])])),
                    ("automatic_https", .object([("disable", .bool(true))])),
                ]))]))])),
                ("tls", .object([("certificates", .object([("load_files", .array([.object([
                    ("certificate", .string(live + "/fullchain.pem")),
                    ("key", .string(live + "/privkey.pem")),
                ])]))]))])),
            ])),
        ])
        let configPath = try directory.write("caddy.json", config.serialized(pretty: true))
        process = try TestProcess(
            ["/usr/bin/caddy", "run", "--config", configPath],
            environment: ["HOME": directory.path, "XDG_DATA_HOME": directory.file("xdg-data"),
                          "XDG_CONFIG_HOME": directory.file("xdg-config")],
            stderrPath: directory.file("caddy.log"))
        try waitUntilReady()
    }

    /// Writes archive version N with a new key and leaf and points the live links at it.
    @discardableResult
    func issue(version: Int) throws -> Certificate {
        try Self.issue(layout: layout, ca: ca, version: version)
    }

    private static func issue(layout: CertbotLayoutWriter, ca: TestCA, version: Int) throws -> Certificate {
        let key = try CertificateFactory.makeKey(.ecdsaP256)
        let now = Int64(time(nil))
        let leaf = try ca.issue(names: [Self.hostName], key: key, notBefore: now - 3600, notAfter: now + 30 * 86_400)
        try layout.writeVersion(lineage: Self.lineage, version: version, certificate: leaf, chain: [ca.intermediate], key: key)
        try layout.linkAll(lineage: Self.lineage, toVersion: version)
        return leaf
    }

    var rootFile: String { get throws { try directory.write("root.pem", ca.root.pem, mode: 0o644) } }

    /// Polls the admin API and then the TLS port, 50 ms apart, for at most 20 seconds.
    private func waitUntilReady() throws {
        let deadline = monotonicSeconds() + 20
        let admin = HTTPRequest(method: "GET", endpoint: try HTTPEndpoint(adminURL), path: "/config/", connectTimeout: 1, timeout: 2)
        while true {
            if let response = try? HTTPClient().send(admin), response.status == 200,
               (try? servedLeafSHA256()) != nil {
                return
            }
            if let status = process.wait(timeout: 0) {
                throw TestSupportError("caddy exited (status \(status)): \(directory.read("caddy.log"))")
            }
            guard monotonicSeconds() < deadline else {
                throw TestSupportError("caddy not ready within 20 s: \(directory.read("caddy.log"))")
            }
            usleep(50_000)  // readiness poll interval, bounded by the deadline above
        }
    }

    /// SHA-256 (hex) of the leaf Caddy presents for SNI localhost, read with openssl s_client.
    func servedLeafSHA256() throws -> String {
        let client = try TestProcess(
            ["/bin/sh", "-c",
             "timeout 10 openssl s_client -connect 127.0.0.1:\(httpsPort) -servername \(Self.hostName) </dev/null 2>/dev/null"
             + " | openssl x509 -noout -fingerprint -sha256"])
        let output = try client.readAll(timeout: 15)
        _ = client.wait(timeout: 5)
        guard let equals = output.firstIndex(of: "=") else { throw TestSupportError("no fingerprint from openssl: \(output)") }
        return output[output.index(after: equals)...].filter { $0 != ":" && !$0.isWhitespace }.lowercased()
    }
}

@Suite("Caddy reload against a real Caddy", .serialized)
struct CaddyReloadTargetTests {
    @Test("after the files change, /load with must-revalidate makes Caddy serve the new leaf", arguments: [false, true])
    func reloadServesNewCertificate(adminOnSocket: Bool) async throws {
        let caddy = try CaddyUnderTest(adminOnSocket: adminOnSocket)
        let first = try caddy.servedLeafSHA256()

        let renewed = try caddy.issue(version: 2)
        #expect(first != renewed.sha256.lowercased())
        // Caddy does not watch the files: it still serves the first leaf.
        #expect(try caddy.servedLeafSHA256() == first)

        let target = try CaddyReloadTarget(url: caddy.adminURL)
        let line = try await target.reload(context: reloadContext(timeout: 15))
        #expect(line.contains("loaded its configuration again"))
        #expect(try caddy.servedLeafSHA256() == renewed.sha256.lowercased())
    }

    @Test("HTTPS with verification: trusted through ca-file, refused as reload-unreachable without it")
    func tlsVerification() async throws {
        let caddy = try CaddyUnderTest(adminOnSocket: false)
        let url = "https://localhost:\(caddy.httpsPort)/"
        let trusted = try HTTPReloadTarget(url: url, method: "GET", trust: .caFile(try caddy.rootFile))
        #expect(try await trusted.reload(context: reloadContext()).contains("answered 200"))

        let untrusted = try HTTPReloadTarget(url: url, method: "GET")
        let error = try await reloadError(untrusted)
        #expect(error.code == .reloadUnreachable)
        #expect(error.message.contains("TLS"))
        #expect(error.fix?.contains("ca-file") == true)

        // insecure = true: the same untrusted endpoint answers when nothing is verified.
        let unverified = try HTTPReloadTarget(url: url, method: "GET", trust: .unverified)
        #expect(try await unverified.reload(context: reloadContext()).contains("answered 200"))
    }

    @Test("a closed admin socket is reload-unreachable naming the socket")
    func missingSocket() async throws {
        let directory = try TemporaryDirectory()
        let target = try CaddyReloadTarget(url: "unix:\(directory.file("nothing.sock"))")
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnreachable)
        #expect(error.message.contains("nothing.sock"))
    }
}
