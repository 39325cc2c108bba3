import ArgumentParser
import CertReload

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload check`: resolve, validate and access-check lineages.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check lineages: links, access as the service user, PEM, key, chain, dates, names.",
            discussion: """
                Without arguments every lineage under <certbot-dir>/live/ is checked. An argument is a lineage name or the path of a live/NAME directory (certbot's RENEWED_LINEAGE). With --cert/--key, a pair outside certbot's layout is checked instead. Nothing is changed; exit status 0 all usable, 1 at least one unusable, 2 usage error.
                """)

        @Argument(help: ArgumentHelp("Lineage names or live/NAME directories.", valueName: "name-or-dir"))
        var lineages: [String] = []

        @OptionGroup var certbot: CertbotOptions

        @Option(help: ArgumentHelp("The account the server reads the files as.", valueName: "user"))
        var user: String?

        @Option(name: .customLong("hostname"), help: ArgumentHelp("A name the certificate must cover (repeatable).", valueName: "host"))
        var hostnames: [String] = []

        @Option(name: .customLong("warn-days"), help: "Warn when fewer days than this are left.")
        var warnDays: Int = 14

        @Option(help: ArgumentHelp("A certificate file outside certbot's layout.", valueName: "file"))
        var cert: String?

        @Option(help: ArgumentHelp("Its private key file.", valueName: "file"))
        var key: String?

        @Option(help: ArgumentHelp("Its chain file (optional; else certificates after the first in --cert).", valueName: "file"))
        var chain: String?

        @Option(
            name: .customLong("config"),
            help: ArgumentHelp(
                "Check each target of this configuration file as its user, with its hostnames (lineage arguments then name targets).",
                valueName: "file"))
        var configFile: String?

        @OptionGroup var output: OutputOptions

        func validate() throws {
            if configFile != nil && (cert != nil || user != nil || !hostnames.isEmpty) {
                throw ValidationError("--config takes each target's user and hostnames from the file; drop --user/--hostname/--cert")
            }
            if (cert == nil) != (key == nil) {
                throw ValidationError("--cert and --key go together")
            }
            if cert != nil && !lineages.isEmpty {
                throw ValidationError("give either lineages or --cert/--key, not both")
            }
            if warnDays < 0 { throw ValidationError("--warn-days must be 0 or more") }
        }

        func run() async throws {
            if let configFile {
                try await runConfigured(configFile)
                return
            }
            // No --user, no files, and a configuration is there: each target as its own user.
            let defaultConfig = ConfigurationLoader.path(option: nil)
            if user == nil && cert == nil && lineages.isEmpty && certbot.certbotDirectory == nil && access(defaultConfig, F_OK) == 0 {
                if output.format == .text {
                    Output.write("No --user given: checking each target of \(defaultConfig) as its own user (--user USER checks as one account instead).\n\n")
                }
                try await runConfigured(defaultConfig)
                return
            }
            let account = try user.map { name throws(UsageError) in try Account.named(name) }
            let sources: [LineageSource]
            if let cert, let key {
                sources = [.explicit(cert: cert, key: key, chain: chain)]
            } else {
                let directory = certbot.directory
                if lineages.isEmpty {
                    sources = try directory.lineages()
                } else {
                    try directory.requireExists()  // a missing certbot directory first, then unknown names
                    sources = try lineages.map { name throws(UsageError) in try directory.lineage(name) }
                }
            }
            let options = CheckOptions(serviceUser: account, hostnames: hostnames, warnDays: warnDays)
            let report = try Checker(options: options).check(sources)
            switch output.format {
            case .json:
                Output.write(CheckRendering.json(report).serialized(pretty: true) + "\n")
            case .text:
                Output.write(CheckRendering(color: Output.colorOnStandardOutput).text(report, now: options.now))
            }
            if !report.usable { throw ExitCode(1) }
        }

        /// `check --config FILE [TARGET…]`: one report per target, as its user, with its names.
        private func runConfigured(_ path: String) async throws {
            let configuration = try ConfiguredTargets.load(ConfigFileOptions(path: path))
            let targets = try ConfiguredTargets.select(lineages, from: configuration)
            var usable = true
            var documents: [(String, JSON)] = []
            var text = ""
            for target in targets {
                let pipeline = TargetPipeline(configuration: configuration, target: target, logger: ConfiguredTargets.logger())
                let report = try await pipeline.check()
                // What the server says it serves (Stalwart's registry); nothing for other servers.
                let server = await StalwartView.explain(target: target, lineages: report.lineages, afterReload: false, logger: ConfiguredTargets.logger())
                usable = usable && report.usable && !server.problems.contains { $0.severity == .error }
                var document = CheckRendering.json(report)
                if case .object(var members) = document, !(server.lines.isEmpty && server.problems.isEmpty) {
                    members.append(("server", CheckRendering.json(server)))
                    document = .object(members)
                }
                documents.append((target.name, document))
                text += "== target \(target.name) (user \(target.user ?? "not set: checked as \(Account.current().name)"))\n" + CheckRendering(color: Output.colorOnStandardOutput).text(report, now: Int64(time(nil)))
                text += CheckRendering(color: Output.colorOnStandardOutput).text(server) + "\n"
            }
            switch output.format {
            case .json: Output.write(JSON.object([("usable", .bool(usable)), ("targets", .object(documents))]).serialized(pretty: true) + "\n")
            case .text: Output.write(text)
            }
            if !usable { throw ExitCode(1) }
        }
    }
}
