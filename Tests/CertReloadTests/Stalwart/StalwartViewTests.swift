#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import CertReload

let readPermissions = "sysCertificateGet,sysNetworkListenerGet,sysSystemSettingsGet"

/// A Stalwart target for the stand-in, with the lineage of `files`.
func stalwartTarget(
    _ stalwart: StalwartStandIn, key: String = "ops", files: PEMFiles, verify: [String] = [], hostnames: [String] = []
) throws -> TargetConfiguration {
    var target = TargetConfiguration(
        name: "mail", location: ConfigLocation(file: "certreload.toml", line: 1, key: "target.mail"),
        reload: .stalwart(url: stalwart.url, api: .auto, token: try stalwart.apiKeyFile(key), username: nil, password: nil))
    target.lineages = [files.name]
    target.verify = try verify.map { url in try VerifyEndpoint(parsing: url) }
    target.hostnames = hostnames
    return target
}

func explain(_ target: TargetConfiguration, _ files: PEMFiles, afterReload: Bool = false) async throws -> StalwartFindings {
    let report = try files.fixture.check(files.name)
    return await StalwartView.explain(
        target: target, lineages: [report], afterReload: afterReload, logger: Logger(label: "certreload.test"))
}

extension StalwartFindings {
    var codes: [ProblemCode] { problems.map(\.code) }
    var everything: String {
        (lines + problems.flatMap { [$0.message, $0.fix ?? "", $0.path ?? ""] }).joined(separator: "\n")
    }
}

@Suite("Stalwart's registry view against the stand-in")
struct StalwartViewTests {
    @Test("a File certificate object is matched to its lineage; nothing to warn about", arguments: versions016)
    func fileObject(version: String) async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(
            version, apiKeys: ["ops:k:\(readPermissions)"], certificates: [files.object("c1")],
            listeners: ["smtp,smtp,0.0.0.0:25,true,false"], defaultCertificate: "c1")
        let findings = try await explain(try stalwartTarget(stalwart, files: files, verify: ["smtp://mail.example.test:25"]), files)
        #expect(findings.problems.isEmpty, "\(findings.problems)")
        #expect(findings.lines.contains { $0.contains("certificate object c1 reads \(files.fullchain) → lineage mail.example.test") })
        #expect(findings.lines.contains { $0.contains("smtp://mail.example.test:25 → Stalwart listener smtp") && $0.contains("STARTTLS") })
        #expect(findings.lines.contains { $0.contains("default certificate (for clients without SNI) is object c1") })
    }

    @Test("an inline Text certificate warns stalwart-certificate-inline, the lineage is unused, and no PEM body is shown")
    func inlineObject() async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(
            "1.0", apiKeys: ["ops:k:\(readPermissions)"], certificates: [files.object("c1", "text")], defaultCertificate: "c1")
        let findings = try await explain(try stalwartTarget(stalwart, files: files), files)
        #expect(findings.codes.sorted { $0.rawValue < $1.rawValue } == [.stalwartCertificateInline, .stalwartLineageUnused])
        #expect(findings.problems.allSatisfy { $0.severity == .warning })
        let inline = try #require(findings.problems.first { $0.code == .stalwartCertificateInline })
        #expect(inline.message.contains("never follow renewals"))
        #expect(inline.fix?.contains("\"filePath\":\"\(files.fullchain)\"") == true)
        // The stand-in did send the body (Stalwart does), so this can fail …
        let pem = String(decoding: try SafeFile.read(files.fullchain, limit: 1 << 16).get(), as: UTF8.self)
        let body = pem.split(separator: "\n")[1]
        #expect(try stalwart.server.requests().count == 1)
        // … and no part of it is in what certreload says.
        #expect(!findings.everything.contains("BEGIN CERTIFICATE"))
        #expect(!findings.everything.contains(body))
        #expect(!findings.everything.contains("****"))
    }

    @Test("after a reload, 0.16.0–0.16.10 keep the stored notValidAfter: stalwart-metadata-stale; 0.16.11 and 1.0 refresh it",
          arguments: versions016)
    func staleMetadata(version: String) async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(
            version, apiKeys: ["ops:k:\(reloadPermissions),\(readPermissions)"], certificates: [files.object("c1")], defaultCertificate: "c1")
        // certbot renews: version 2, valid 30 days longer.
        try files.fixture.issue(files.name, version: 2, notAfter: files.fixture.now + 90 * 86_400)
        let target = try stalwartTarget(stalwart, files: files)
        #expect(try await target.makeReloadTarget().reload(context: reloadContext()).contains("(JMAP)"))

        let findings = try await explain(target, files, afterReload: true)
        if version == "0.16.10" {
            let stale = try #require(findings.problems.first { $0.code == .stalwartMetadataStale })
            #expect(stale.severity == .error)
            #expect(stale.message.contains("will delete the certificate object"))
            #expect(stale.message.contains(StalwartRegistry.formatUTC(files.fixture.now + 90 * 86_400)))
            #expect(stale.fix?.contains("0.16.11") == true)
        } else {
            #expect(findings.problems.isEmpty, "\(findings.problems)")
        }
        // Before a reload the difference is only a line.
        let before = try await explain(target, files, afterReload: false)
        #expect(!before.codes.contains(.stalwartMetadataStale))
    }

    @Test("useTls false behind a port-25 verify URL is stalwart-listener-tls-off; a STARTTLS listener probed as implicit TLS is tls-mode")
    func listeners() async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(
            "1.0", apiKeys: ["ops:k:\(readPermissions)"], certificates: [files.object("c1")],
            listeners: ["smtp,smtp,[::]:25,false,false", "submissions,smtp,0.0.0.0:465,true,false", "imaps,imap,0.0.0.0:993,true,true"],
            defaultCertificate: "c1")
        let target = try stalwartTarget(
            stalwart, files: files,
            verify: ["smtp://mail.example.test:25", "submissions://mail.example.test:465", "imaps://mail.example.test:993"])
        let findings = try await explain(target, files)
        #expect(findings.codes == [.stalwartListenerTLSOff, .stalwartListenerTLSMode], "\(findings.problems)")
        let off = findings.problems[0]
        #expect(off.message.contains("listener smtp"))
        #expect(off.message.contains("useTls false"))
        #expect(off.message.contains("starttls-not-offered"))
        #expect(off.path == "smtp://mail.example.test:25")
        #expect(findings.problems[1].message.contains("speaks STARTTLS (tlsImplicit false), but submissions://mail.example.test:465 probes implicit TLS"))
        #expect(findings.lines.contains { $0.contains("imaps://mail.example.test:993 → Stalwart listener imaps") })
    }

    @Test("defaultCertificateId unset with two certificates, or set to one that does not cover the names: sni-default-differs")
    func defaultCertificate() async throws {
        let files = try PEMFiles()
        let other = try PEMFiles("other.example.test")
        let objects = [files.object("c1"), other.object("c2")]
        let unset = try StalwartStandIn("1.0", apiKeys: ["ops:k:\(readPermissions)"], certificates: objects)
        let findingsUnset = try await explain(try stalwartTarget(unset, files: files), files)
        let problem = try #require(findingsUnset.problems.first { $0.code == .sniDefaultDiffers })
        #expect(problem.message.contains("Stalwart has no defaultCertificateId"))
        #expect(problem.message.contains("arbitrary one of its 2 certificates"))

        let wrong = try StalwartStandIn("1.0", apiKeys: ["ops:k:\(readPermissions)"], certificates: objects, defaultCertificate: "c2")
        let findingsWrong = try await explain(try stalwartTarget(wrong, files: files, hostnames: ["mail.example.test"]), files)
        let differs = try #require(findingsWrong.problems.first { $0.code == .sniDefaultDiffers })
        #expect(differs.message.contains("object c2 (other.example.test), does not cover mail.example.test"))
    }

    @Test("missing read permissions: one warning naming the three, and the readable parts are still explained")
    func permissionsMissing() async throws {
        let files = try PEMFiles()
        let stalwart = try StalwartStandIn(
            "1.0", apiKeys: ["some:k:sysCertificateGet", "none:n:\(reloadPermissions)"], certificates: [files.object("c1")],
            listeners: ["smtp,smtp,0.0.0.0:25,false,false"])
        let some = try await explain(try stalwartTarget(stalwart, key: "some", files: files, verify: ["smtp://mail.example.test:25"]), files)
        #expect(some.codes == [.stalwartRegistryUnreadable])
        #expect(some.problems[0].severity == .warning)
        #expect(some.problems[0].message.contains("its listeners (needs sysNetworkListenerGet)"))
        #expect(some.problems[0].fix == "give the API key the permissions sysCertificateGet, sysNetworkListenerGet, sysSystemSettingsGet (reading only)")
        #expect(some.lines.contains { $0.contains("→ lineage mail.example.test") })

        let none = try await explain(try stalwartTarget(stalwart, key: "none", files: files, verify: ["smtp://mail.example.test:25"]), files)
        #expect(none.codes == [.stalwartRegistryUnreadable])
    }

    @Test("0.15 has no registry: one line and no problem (Basic); refused credentials: one warning")
    func noRegistry() async throws {
        let files = try PEMFiles()
        let old = try StalwartStandIn("0.15", users: ["admin:pw:settings-reload"])
        var target = TargetConfiguration(
            name: "mail", location: ConfigLocation(file: "certreload.toml", line: 1, key: "target.mail"),
            reload: .stalwart(url: old.url, api: .auto, token: nil, username: "admin", password: try old.passwordFile("pw")))
        target.lineages = [files.name]
        let findings = try await explain(target, files)
        #expect(findings.problems.isEmpty)
        #expect(findings.lines.first?.contains("no certificate registry") == true)

        let new = try StalwartStandIn("1.0", apiKeys: ["ops:k:\(readPermissions)"])
        target.reload = .stalwart(url: new.url, api: .auto, token: nil, username: "admin", password: try new.passwordFile("pw"))
        let refused = try await explain(target, files)
        #expect(refused.codes == [.stalwartRegistryUnreadable])
        #expect(refused.problems[0].message.contains("401"))
        #expect(refused.problems[0].fix?.contains("check the credentials") == true)
    }

    @Test("UTC dates round-trip in Stalwart's format")
    func utc() {
        for seconds: Int64 in [0, 951_782_400, 1_798_761_600, 4_102_444_799] {
            #expect(StalwartRegistry.parseUTC(StalwartRegistry.formatUTC(seconds)) == seconds)
        }
        #expect(StalwartRegistry.formatUTC(951_782_400) == "2000-02-29T00:00:00Z")
        #expect(StalwartRegistry.parseUTC("2026-13-01T00:00:00Z") == nil)
    }
}
