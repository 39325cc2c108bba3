public import CertReload
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The embedded demo: a certbot-style directory with three lineages that show what
/// certreload is for. It needs no certbot, no network and no server.
public struct Demo: Sendable {
    /// One lineage of the demo and what it is meant to show.
    public struct Scenario: Sendable {
        public var lineage: String
        public var story: String
        /// The problem code the check must report (nil: none, the lineage is healthy).
        public var expectedCode: ProblemCode?
    }

    public static let scenarios: [Scenario] = [
        Scenario(
            lineage: "healthy.example",
            story: "A lineage set up the way that survives renewals: live/ and archive/ searchable by the service user's group, the archive key in that group with g+r.",
            expectedCode: nil),
        Scenario(
            lineage: "blocked.example",
            story: "The classic trap: live/ was opened to the service user, but the real files sit in archive/, which certbot keeps root-only. The server reads the links but not their targets.",
            expectedCode: .notTraversable),
        Scenario(
            lineage: "renewing.example",
            story: "Caught half-way through `certbot renew`: cert.pem and privkey.pem already point at version 2, chain.pem and fullchain.pem still at version 1. Reloading now would serve a broken pair.",
            expectedCode: .versionMismatch),
    ]

    public let root: String
    public let serviceUser: Account

    /// Builds the demo tree in a new temporary directory.
    public static func build(serviceUser: Account, now: Int64? = nil) throws -> Demo {
        let now = now ?? Int64(time(nil))
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-demo")
        do {
            chmod(root, 0o755)
            let config = Paths.join(root, "letsencrypt")
            let writer = try CertbotLayoutWriter(configDirectory: config)
            let ca = try TestCA(name: "Demo ACME", now: now)
            let asRoot = geteuid() == 0
            let group = serviceUser.gid

            // live/ and archive/ opened to the service user's group (chgrp needs root; without
            // root the demo opens them to everyone, which the check then evaluates).
            for directory in ["live", "archive"] {
                let path = Paths.join(config, directory)
                if asRoot { chown(path, 0, group); chmod(path, 0o750) } else { chmod(path, 0o755) }
            }

            func issue(_ name: String, version: Int) throws {
                let key = try CertificateFactory.makeKey(.ecdsaP256)
                let leaf = try ca.issue(
                    names: [name, "*.\(name)"], key: key, notBefore: now - 3600 - Int64(version),
                    notAfter: now + 89 * 86_400 + Int64(version))
                try writer.writeVersion(lineage: name, version: version, certificate: leaf, chain: [ca.intermediate], key: key)
                let keyPath = writer.archivePath(name, .privkey, version: version)
                if asRoot { chown(keyPath, 0, group); chmod(keyPath, 0o640) } else { chmod(keyPath, 0o644) }
            }

            try issue("healthy.example", version: 1)
            try writer.linkAll(lineage: "healthy.example", toVersion: 1)

            try issue("blocked.example", version: 1)
            try writer.linkAll(lineage: "blocked.example", toVersion: 1)
            chmod(writer.archiveDirectory("blocked.example"), 0o700)
            if asRoot { chown(writer.archiveDirectory("blocked.example"), 0, 0) }

            try issue("renewing.example", version: 1)
            try issue("renewing.example", version: 2)
            try writer.linkAll(lineage: "renewing.example", toVersion: 1)
            try writer.link(lineage: "renewing.example", .cert, toVersion: 2)
            try writer.link(lineage: "renewing.example", .privkey, toVersion: 2)
            return Demo(root: root, serviceUser: serviceUser)
        } catch {
            FileTree.remove(root)
            throw error
        }
    }

    public var certbotDirectory: CertbotDirectory {
        CertbotDirectory(Paths.join(root, "letsencrypt"))
    }

    /// Checks every demo lineage as the service user.
    public func check(now: Int64? = nil) throws -> CheckReport {
        let sources = try certbotDirectory.lineages()
        return try Checker(options: CheckOptions(serviceUser: serviceUser, now: now)).check(sources)
    }

    /// Whether each scenario showed what it is meant to show.
    public static func outcomes(of report: CheckReport) -> [(Scenario, Bool)] {
        scenarios.map { scenario in
            guard let lineage = report.lineages.first(where: { $0.name == scenario.lineage }) else {
                return (scenario, false)
            }
            if let code = scenario.expectedCode {
                return (scenario, lineage.problems.contains { $0.code == code })
            }
            return (scenario, lineage.usable)
        }
    }

    /// Removes the demo tree.
    public func remove() {
        FileTree.remove(root)
    }
}
