import Testing
@testable import CertReload
@testable import CertReloadDemo

@Suite("Generic HTTP reload target against a loopback HTTP endpoint")
struct HTTPReloadTargetTests {
    @Test("sends method, headers, body and bearer token; any 2xx is success by default")
    func success() async throws {
        let fake = try ScriptServer(hook: ["--token", "hook-token-123", "--hook-status", "204"])
        let target = try HTTPReloadTarget(
            url: fake.url + "/hook", method: "PUT", headers: ["X-Reason": "certbot renewal", "Content-Type": "text/plain"],
            body: "reload please", token: try fake.tokenFile("hook-token-123"))
        #expect(try await target.reload(context: reloadContext()).contains("answered 204"))
        let request = try #require(try fake.requests().first)
        #expect(request.method == "PUT")
        #expect(request.path == "/hook")
        #expect(request.body == "reload please")
        #expect(request.headers.contains { $0.0 == "X-Reason" && $0.1 == "certbot renewal" })
        #expect(request.headers.contains { $0.0.lowercased() == "authorization" && $0.1 == "Bearer hook-token-123" })
    }

    @Test("expect-status decides; another status is reload-failed naming what was expected")
    func expectStatus() async throws {
        let fake = try ScriptServer(hook: ["--hook-status", "202"])
        let strict = try HTTPReloadTarget(url: fake.url + "/hook", expectStatus: [200])
        let error = try await reloadError(strict)
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("202"))
        #expect(error.message.contains("expected 200"))
        #expect(try await HTTPReloadTarget(url: fake.url + "/hook", expectStatus: [202]).reload(context: reloadContext()).contains("202"))
    }

    @Test("401 is reload-unauthorized; a secret-looking header value is never repeated", arguments: [false, true])
    func unauthorized(echo: Bool) async throws {
        let fake = try ScriptServer(hook: ["--token", "right"] + (echo ? ["--echo-auth"] : []))
        let target = try HTTPReloadTarget(url: fake.url + "/hook", headers: ["Authorization": "Bearer header-secret-42"])
        let error = try await reloadError(target)
        #expect(error.code == .reloadUnauthorized)
        #expect(!error.message.contains("header-secret-42"))
    }

    @Test("redirects: followed on the same host, refused to another host")
    func redirects() async throws {
        let fake = try ScriptServer(hook: [])
        #expect(try await HTTPReloadTarget(url: fake.url + "/moved-here").reload(context: reloadContext()).contains("204"))
        #expect(try fake.requests().map(\.path) == ["/moved-here", "/hook"])

        let error = try await reloadError(try HTTPReloadTarget(url: fake.url + "/moved-away"))
        #expect(error.code == .reloadFailed)
        #expect(error.message.contains("another host"))
        #expect(try fake.requests().count == 3)
    }

    @Test("the target is built from the configuration")
    func fromConfiguration() throws {
        var configuration = TargetConfiguration(
            name: "hook", location: ConfigLocation(file: "certreload.toml", line: 3, key: "target.hook.reload"),
            reload: .http(url: "https://example.test/reload", method: "", headers: [:], body: nil, token: nil, expectStatus: []))
        configuration.caFile = "/etc/ssl/example-ca.pem"
        let target = try #require(try configuration.makeReloadTarget() as? HTTPReloadTarget)
        #expect(target.method == "POST")
        #expect(target.trust == .caFile("/etc/ssl/example-ca.pem"))
        #expect(target.summary == "HTTP POST https://example.test/reload")
        configuration.reload = .systemd(unit: "x.service", mode: .restart)
        #expect(try configuration.makeReloadTarget() is SystemdReloadTarget)
        configuration.reload = .signal(name: "SIGHUP", pidFile: "/run/nginx.pid", unit: nil)
        #expect(try configuration.makeReloadTarget() is SignalReloadTarget)
        configuration.reload = .command(argv: ["/usr/sbin/postfix", "reload"], timeout: 30)
        #expect(try configuration.makeReloadTarget() is CommandReloadTarget)
    }
}
