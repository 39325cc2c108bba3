import CertReload
import CertReloadDemo
import Glibc
import Testing

@Suite("Validating a lineage with OpenSSL")
struct LineageValidatorTests {
    static let keyTypes: [CertificateFactory.KeyType] = [.rsa(bits: 2048), .ecdsaP256, .ed25519]

    @Test("a healthy lineage is usable with every key type", arguments: keyTypes)
    func healthy(keyType: CertificateFactory.KeyType) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let (leaf, _) = try fixture.issue("ok.test", names: ["ok.test", "*.ok.test"], keyType: keyType)
        let report = try fixture.check("ok.test", hostnames: ["ok.test", "mail.ok.test"])
        #expect(report.problems.isEmpty, "\(report.problems)")
        let summary = try #require(report.certificate)
        #expect(summary.sha256 == leaf.sha256)
        #expect(summary.subjectAltNames == ["ok.test", "*.ok.test"])
        #expect(summary.subject == "CN=ok.test")
        #expect(summary.issuer == "CN=certreload test intermediate")
        #expect(summary.keyAlgorithm?.hasPrefix(keyType.description.split(separator: " ")[0].description) == true)
    }

    @Test("a key from another version does not match", arguments: keyTypes)
    func keyMismatch(keyType: CertificateFactory.KeyType) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("mismatch.test", keyType: keyType)
        let other = try CertificateFactory.makeKey(keyType)
        try writeFile(fixture.archive("mismatch.test") + "/privkey1.pem", other.pem(), mode: 0o600)
        let report = try fixture.check("mismatch.test")
        #expect(report.codes == [.keyMismatch])
        #expect(report.problem(.keyMismatch)?.path == fixture.archive("mismatch.test") + "/privkey1.pem")
    }

    @Test("fullchain.pem must be cert.pem followed by chain.pem")
    func chainMismatch() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let (leaf, _) = try fixture.issue("full.test")
        try writeFile(fixture.archive("full.test") + "/fullchain1.pem", leaf.pem + fixture.ca.root.pem)
        let report = try fixture.check("full.test")
        #expect(report.codes == [.chainMismatch])
    }

    @Test("a chain that does not sign the certificate is invalid")
    func chainInvalid() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let (leaf, _) = try fixture.issue("chain.test")
        let stranger = try TestCA(name: "stranger")
        try writeFile(fixture.archive("chain.test") + "/chain1.pem", stranger.intermediate.pem)
        try writeFile(fixture.archive("chain.test") + "/fullchain1.pem", leaf.pem + stranger.intermediate.pem)
        let report = try fixture.check("chain.test")
        #expect(report.codes == [.chainInvalid])
    }

    @Test("dates: expired and not yet valid are errors, expiring soon a warning", arguments: [
        (-90 as Int64, -1 as Int64, ProblemCode.expired, Severity.error),
        (2, 90, .notYetValid, .error),
        (-80, 5, .expiringSoon, .warning),
    ])
    func dates(fromDays: Int64, toDays: Int64, code: ProblemCode, severity: Severity) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("date.test", notBefore: fixture.now + fromDays * 86_400, notAfter: fixture.now + toDays * 86_400)
        let report = try fixture.check("date.test")
        #expect(report.codes == [code])
        #expect(report.problem(code)?.severity == severity)
    }

    @Test("--warn-days moves the warning threshold")
    func warnDays() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("warn.test", notAfter: fixture.now + 20 * 86_400)
        #expect(try fixture.check("warn.test").codes.isEmpty)
        #expect(try fixture.check("warn.test", warnDays: 30).codes == [.expiringSoon])
    }

    @Test("wildcards cover exactly one label (RFC 6125)", arguments: [
        ("mail.example.test", true), ("example.test", false), ("a.b.example.test", false),
        ("MAIL.Example.Test", true), ("mailexample.test", false), ("127.0.0.1", false),
    ])
    func wildcard(host: String, covered: Bool) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("wild.test", names: ["*.example.test"])
        let report = try fixture.check("wild.test", hostnames: [host])
        #expect(report.codes.contains(.hostnameNotCovered) == !covered)
        if !covered {
            #expect(report.problem(.hostnameNotCovered)?.message.contains(host) == true)
        }
    }

    @Test("damaged PEM is bad-pem", arguments: ["cert1.pem", "chain1.pem", "privkey1.pem"])
    func badPEM(file: String) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("bad.test")
        let header = file.hasPrefix("privkey") ? "PRIVATE KEY" : "CERTIFICATE"
        try writeFile(fixture.archive("bad.test") + "/" + file, "-----BEGIN \(header)-----\nnot base64 at all!\n-----END \(header)-----\n", mode: 0o600)
        let report = try fixture.check("bad.test")
        let problem = try #require(report.problem(.badPEM))
        #expect(problem.path == fixture.archive("bad.test") + "/" + file)
        #expect(!report.usable)
    }

    @Test("an encrypted key is reported as such, never prompted for")
    func encryptedKey() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let (_, key) = try fixture.issue("enc.test")
        try writeFile(fixture.archive("enc.test") + "/privkey1.pem", key.pem(passphrase: "secret passphrase"), mode: 0o600)
        let report = try fixture.check("enc.test")
        #expect(report.codes == [.encryptedKey])
    }

    @Test("security warnings: RSA below 2048 bits, key readable by others")
    func securityWarnings() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("weak.test", keyType: .rsa(bits: 1024))
        chmod(fixture.archive("weak.test") + "/privkey1.pem", 0o644)
        let report = try fixture.check("weak.test")
        #expect(Set(report.codes) == [.weakKey, .keyWorldReadable])
        #expect(report.usable)
    }

    @Test("a self-signed leaf without keyCertSign is self-signed; a CA-issued leaf is not")
    func selfSigned() throws {
        let key = try CertificateFactory.makeKey(.ecdsaP256)
        let leaf = try CertificateFactory.makeCertificate(commonName: "fallback", subjectAltNames: ["fallback"], key: key, notBefore: 0, notAfter: 4_000_000_000)
        #expect(leaf.isSelfSigned)
        let ca = try TestCA()
        #expect(try !ca.issue(names: ["x.test"], key: key, notBefore: 0, notAfter: 4_000_000_000).isSelfSigned)
    }

    @Test("--cert/--key outside certbot's layout, chain taken from the certificate file")
    func explicitPair() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let key = try CertificateFactory.makeKey(.ecdsaP256)
        let leaf = try fixture.ca.issue(names: ["pair.test"], key: key, notBefore: fixture.now - 60, notAfter: fixture.now + 30 * 86_400)
        let dir = fixture.root
        try writeFile(dir + "/server.crt", leaf.pem + fixture.ca.intermediate.pem)
        try writeFile(dir + "/server.key", key.pem(), mode: 0o600)
        let source = LineageSource.explicit(cert: dir + "/server.crt", key: dir + "/server.key", chain: nil)
        let report = try Checker(options: CheckOptions(hostnames: ["pair.test"], now: fixture.now)).check([source])
        #expect(report.lineages[0].problems.isEmpty, "\(report.lineages[0].problems)")
        try writeFile(dir + "/server.key", try CertificateFactory.makeKey(.ecdsaP256).pem(), mode: 0o600)
        let bad = try Checker(options: CheckOptions(now: fixture.now)).check([source])
        #expect(bad.lineages[0].codes == [.keyMismatch])
    }
}
