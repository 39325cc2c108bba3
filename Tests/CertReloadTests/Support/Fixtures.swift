import CertReload
import CertReloadDemo
import Glibc

/// A certbot-style directory in a fresh temporary folder, with a CA that issues lineages.
/// Removed by `remove()`; tests call it with `defer`.
final class LineageFixture: @unchecked Sendable {
    // @unchecked Sendable: used from one test at a time; fields are set once in init.
    let root: String
    let writer: CertbotLayoutWriter
    let ca: TestCA
    let now: Int64

    init(now: Int64 = Int64(time(nil))) throws {
        root = try FileTree.makeTemporaryDirectory(prefix: "certreload-test")
        chmod(root, 0o755)
        writer = try CertbotLayoutWriter(configDirectory: root + "/letsencrypt")
        ca = try TestCA(now: now)
        self.now = now
    }

    var config: String { writer.configDirectory }
    var directory: CertbotDirectory { CertbotDirectory(config) }

    /// Issues version `version` of a lineage and points all links at it.
    @discardableResult
    func issue(
        _ name: String, version: Int = 1, names: [String]? = nil, keyType: CertificateFactory.KeyType = .ecdsaP256,
        notBefore: Int64? = nil, notAfter: Int64? = nil, link: Bool = true
    ) throws -> (certificate: Certificate, key: PrivateKey) {
        let key = try CertificateFactory.makeKey(keyType)
        let leaf = try ca.issue(
            names: names ?? [name], key: key, notBefore: notBefore ?? now - 3600,
            notAfter: notAfter ?? now + 60 * 86_400)
        try writer.writeVersion(lineage: name, version: version, certificate: leaf, chain: [ca.intermediate], key: key)
        if link { try writer.linkAll(lineage: name, toVersion: version) }
        return (leaf, key)
    }

    func live(_ name: String) -> String { writer.liveDirectory(name) }
    func archive(_ name: String) -> String { writer.archiveDirectory(name) }

    /// Opens live/ and archive/ (certbot makes them 0700) so that `check` as another user
    /// gets past them.
    func openTopDirectories() {
        chmod(config + "/live", 0o755)
        chmod(config + "/archive", 0o755)
    }

    func check(_ name: String, user: Account? = nil, hostnames: [String] = [], warnDays: Int = 14) throws -> LineageReport {
        let report = try Checker(options: CheckOptions(serviceUser: user, hostnames: hostnames, warnDays: warnDays, now: now))
            .check([directory.lineage(name)])
        return report.lineages[0]
    }

    func remove() { FileTree.remove(root) }
}

extension LineageReport {
    var codes: [ProblemCode] { problems.map(\.code) }
    func problem(_ code: ProblemCode) -> Problem? { problems.first { $0.code == code } }
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    try CertbotLayoutWriter.write(path, text, mode: mode)
}

let runningAsRoot = geteuid() == 0

/// The unprivileged account tests check as (exists on every Debian system).
func nobody() throws -> Account { try Account.named("nobody") }
