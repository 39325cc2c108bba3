import CertReload
import CertReloadCommandLine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload doctor HOST`: one run that names every cause, no configuration needed.
    struct Doctor: RunnableCommand {
        static let spec = CommandSpec(
            name: "doctor",
            abstract: "Probe HOST's mail and web ports, match what they serve against certbot's archive, and check access as the account serving each port.",
            discussion: """
                Default ports: smtp 25, submission 587, smtps 465, imap 143, imaps 993, pop3 110, pop3s 995, https 443; --port SCHEME=PORT (repeatable) replaces them. A closed port is reported as closed, an error only when named with --port. Run it as root: who serves a port comes from /proc, and the check tries as that account. A configuration file, when present, gives certbot-dir and target users. Nothing is changed. Exit status 0 healthy (warnings allowed), 1 a problem, 2 usage error.
                """,
            arguments: [ArgumentSpec(name: "host", help: "The name clients use (sent as SNI, checked against the certificates).", required: true)],
            options: [
                OptionSpec(name: "connect", value: "addr", help: "Dial this address instead of HOST (SNI stays HOST)."),
                OptionSpec(name: "port", value: "scheme=port", help: "SCHEME=PORT to probe (repeatable; replaces the default list).", repeatable: true),
                OptionSpec(name: "lineage", value: "name", help: "The lineage to check (default: the one served, else the one covering HOST)."),
                OptionSpec(name: "user", value: "user", help: "Check access as this account (default: the account serving each port).", kind: .user),
                OptionSpec(name: "ca-file", value: "file", help: "Trust anchors for the 'trusted' column (default: the system trust store).", kind: .file),
                OptionSpec(
                    name: "certbot-dir", value: "dir",
                    help: "certbot's configuration directory (env CERTRELOAD_CERTBOT_DIR; else the configuration's; else /etc/letsencrypt).",
                    kind: .directory),
                OptionSpec(
                    name: "config", value: "file",
                    help: "A configuration file to use (default: \(ConfigurationLoader.defaultPath) when present).", kind: .file),
            ] + OutputOptions.options,
            make: { parsed throws(UsageError) in try Doctor(parsed) })

        var host: String
        var connect: String?
        var ports: [String]
        var lineage: String?
        var user: String?
        var caFile: String?
        var certbotDirectory: String?
        var configFile: String?
        var output: OutputOptions

        init(_ parsed: ParsedArguments) throws(UsageError) {
            host = parsed.argument("host") ?? ""
            connect = parsed.string("connect")
            ports = parsed.strings("port")
            lineage = parsed.string("lineage")
            user = parsed.string("user")
            caFile = parsed.string("ca-file")
            certbotDirectory = parsed.string("certbot-dir")
            configFile = parsed.string("config")
            output = try OutputOptions(parsed)
            guard host.utf8.count <= 253, !host.isEmpty, !host.contains("/"), !host.contains(" ") else {
                throw UsageError("HOST must be a host name such as mail.example.com")
            }
        }

        nonisolated(nonsending) func run() async throws {
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
