import ArgumentParser
import CertReload

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload doctor HOST`: one run that names every cause, no configuration needed.
    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Probe HOST's mail and web ports, match what they serve against certbot's archive, and check access as the account serving each port.",
            discussion: """
                Default ports: smtp 25, submission 587, smtps 465, imap 143, imaps 993, pop3 110, pop3s 995, https 443; --port SCHEME=PORT (repeatable) replaces them. A closed port is reported as closed, an error only when named with --port. Run it as root: who serves a port comes from /proc, and the check tries as that account. A configuration file, when present, gives certbot-dir and target users. Nothing is changed. Exit status 0 healthy (warnings allowed), 1 a problem, 2 usage error.
                """)

        @Argument(help: ArgumentHelp("The name clients use (sent as SNI, checked against the certificates).", valueName: "host"))
        var host: String

        @Option(help: ArgumentHelp("Dial this address instead of HOST (SNI stays HOST).", valueName: "addr"))
        var connect: String?

        @Option(name: .customLong("port"), help: ArgumentHelp("SCHEME=PORT to probe (repeatable; replaces the default list).", valueName: "scheme=port"))
        var ports: [String] = []

        @Option(help: ArgumentHelp("The lineage to check (default: the one served, else the one covering HOST).", valueName: "name"))
        var lineage: String?

        @Option(help: ArgumentHelp("Check access as this account (default: the account serving each port).", valueName: "user"))
        var user: String?

        @Option(name: .customLong("ca-file"), help: ArgumentHelp("Trust anchors for the 'trusted' column (default: the system trust store).", valueName: "file"))
        var caFile: String?

        @Option(
            name: .customLong("certbot-dir"),
            help: ArgumentHelp("certbot's configuration directory (env CERTRELOAD_CERTBOT_DIR; else the configuration's; else /etc/letsencrypt).", valueName: "dir"))
        var certbotDirectory: String?

        @Option(name: .customLong("config"), help: ArgumentHelp("A configuration file to use (default: \(ConfigurationLoader.defaultPath) when present).", valueName: "file"))
        var configFile: String?

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard host.utf8.count <= 253, !host.isEmpty, !host.contains("/"), !host.contains(" ") else {
                throw ValidationError("HOST must be a host name such as mail.example.com")
            }
        }

        func run() async throws {
            let parsedPorts = try ports.map { text throws(UsageError) in try DoctorPort(parsing: text) }
            let account = try user.map { name throws(UsageError) in try Account.named(name) }

            // A configuration is used when present; a broken one named explicitly is an error.
            let path = ConfigurationLoader.path(option: configFile)
            var configuration: Configuration?
            if configFile != nil || access(path, F_OK) == 0 {
                do {
                    configuration = try ConfigurationLoader.load(path: path)
                } catch {
                    if configFile != nil { throw UsageError("\(error)", fix: error.fix) }
                    Output.standardError("certreload: ignoring \(path): \(error)")
                }
            }
            let certbot: CertbotDirectory
            if let certbotDirectory {
                certbot = CertbotDirectory(certbotDirectory)
            } else if let env = getenv("CERTRELOAD_CERTBOT_DIR"), env.pointee != 0 {
                certbot = CertbotDirectory(String(cString: env))
            } else {
                certbot = CertbotDirectory(configuration?.certbotDirectory ?? "/etc/letsencrypt")
            }
            try certbot.requireExists()
            if let lineage { _ = try certbot.lineage(lineage) }

            var rerun = ["certreload", "doctor", host]
            if let connect { rerun += ["--connect", connect] }
            for port in ports { rerun += ["--port", port] }
            if let lineage { rerun += ["--lineage", lineage] }
            if let user { rerun += ["--user", user] }
            if let caFile { rerun += ["--ca-file", caFile] }
            if let certbotDirectory { rerun += ["--certbot-dir", certbotDirectory] }

            let doctor = CertReload.Doctor(
                host: host, connect: connect, ports: parsedPorts.isEmpty ? DoctorPort.defaults : parsedPorts, lineage: lineage,
                user: account, certbot: certbot, caFile: caFile, configuration: configuration,
                rerun: rerun.map(Doctor.quote).joined(separator: " "))
            let report = await doctor.run()
            switch output.format {
            case .json: Output.write(DoctorRendering.json(report).serialized(pretty: true) + "\n")
            case .text: Output.write(DoctorRendering(color: Output.colorOnStandardOutput).text(report))
            }
            if !report.healthy { throw ExitCode(1) }
        }

        static func quote(_ word: String) -> String {
            let safe = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "_-./=:@%+,".contains($0) }
            return safe ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
        }
    }
}
