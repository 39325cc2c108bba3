public import CertReload
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The second half of the demo: the whole job on loopback. A TLS server serves the healthy
/// lineage, certbot "renews" it, and certreload verifies (stale), deploys (reload + verify),
/// and probes a mail listener whose TLS is switched off.
public struct DemoWalkthrough: Sendable {
    /// One step: what it shows, the outcome, and whether it showed it.
    public struct Step: Sendable {
        public var title: String
        public var story: String
        public var outcome: TargetOutcome
        public var asExpected: Bool
    }

    public let demo: Demo

    public init(demo: Demo) {
        self.demo = demo
    }

    public func run(logger: Logger) async throws -> [Step] {
        let lineage = "healthy.example"
        let config = demo.certbotDirectory.path
        let live = Paths.join(config, "live/\(lineage)")
        let server = try DemoTLSServer(chainFile: live + "/fullchain.pem", keyFile: live + "/privkey.pem")
        defer { server.stop() }
        let endpoint = try DemoReloadEndpoint(reloading: server)
        defer { endpoint.stop() }
        let smtp = try DemoSMTPWithoutTLS()
        defer { smtp.stop() }

        var configuration = Configuration(path: "(demo)")
        configuration.certbotDirectory = config
        configuration.stateDirectory = Paths.join(demo.root, "state")
        var web = TargetConfiguration(
            name: "web", location: ConfigLocation(file: "(demo)", line: 1, key: "target.web"),
            reload: .http(url: endpoint.url, method: "POST", headers: [:], body: nil, token: nil, expectStatus: []))
        web.lineages = [lineage]
        web.user = demo.serviceUser.name
        web.hostnames = [lineage, "www.\(lineage)"]
        web.verify = [try VerifyEndpoint(parsing: "tls://\(lineage):\(server.port)")]
        web.connect = "127.0.0.1"
        web.verifyTimeout = 1.5
        var mail = web
        mail.name = "mail"
        mail.verify = [try VerifyEndpoint(parsing: "smtp://mail.\(lineage):\(smtp.port)")]

        // What was deployed before the renewal: version 1, which the server serves now.
        let pipeline = TargetPipeline(configuration: configuration, target: web, logger: logger)
        let before = try await pipeline.check()
        guard let deployed = before.lineages.first?.certificate?.sha256 else {
            throw UsageError("the demo lineage has no certificate")
        }
        var state = TargetState(target: "web")
        state.deployedSHA256 = deployed
        state.verifiedSHA256 = deployed
        try StateStore(directory: configuration.stateDirectory).save(state)

        // certbot renews: version 2 is written into archive/ and the links follow.
        try demo.renew(lineage, toVersion: 2)

        var steps: [Step] = []
        let stale = await pipeline.run(.verify)
        steps.append(Step(
            title: "certbot renewed \(lineage); the server was not told",
            story: "`certreload verify` probes the server: it still serves the previous certificate.",
            outcome: stale, asExpected: stale.problems.contains { $0.code == .verifyStale }))

        let deployedOutcome = await pipeline.run(.deploy)
        steps.append(Step(
            title: "certreload deploy (what certbot's deploy hook runs)",
            story: "Check as \(demo.serviceUser.name), reload through the server's HTTP endpoint, and prove over TLS that it serves the new certificate.",
            outcome: deployedOutcome, asExpected: deployedOutcome.status == .deployed && server.reloadCount == 1))

        let noTLS = await TargetPipeline(configuration: configuration, target: mail, logger: logger).run(.verify)
        steps.append(Step(
            title: "a mail listener with TLS switched off",
            story: "Clients see no STARTTLS and send mail in the clear, silently. certreload says so.",
            outcome: noTLS, asExpected: noTLS.problems.contains { $0.code == .starttlsNotOffered }))
        return steps
    }
}

extension Demo {
    /// Writes version N of a demo lineage and points its links at it, as certbot renew does.
    func renew(_ lineage: String, toVersion version: Int) throws {
        let writer = CertbotLayoutWriter(existingConfigDirectory: certbotDirectory.path)
        let ca = try TestCA(name: "Demo ACME")
        let key = try CertificateFactory.makeKey(.ecdsaP256)
        let now = Int64(time(nil))
        let leaf = try ca.issue(names: [lineage, "*.\(lineage)"], key: key, notBefore: now - 60, notAfter: now + 90 * 86_400)
        try writer.writeVersion(lineage: lineage, version: version, certificate: leaf, chain: [ca.intermediate], key: key)
        let keyPath = writer.archivePath(lineage, .privkey, version: version)
        // certbot copies the previous key's group and group bits to the new key.
        var previous = stat()
        if stat(writer.archivePath(lineage, .privkey, version: version - 1), &previous) == 0 {
            chown(keyPath, 0, previous.st_gid)
            chmod(keyPath, 0o600 | (previous.st_mode & 0o074))
        }
        try writer.linkAll(lineage: lineage, toVersion: version)
    }
}
