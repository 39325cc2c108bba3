import CertReload
import CertReloadCommandLine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload check`: resolve, validate and access-check lineages.
    struct Check: RunnableCommand {
        static let spec = CommandSpec(
            name: "check",
            abstract: "Check lineages: links, access as the service user, PEM, key, chain, dates, names.",
            discussion: """
                Without arguments every lineage under <certbot-dir>/live/ is checked. An argument is a lineage name or the path of a live/NAME directory (certbot's RENEWED_LINEAGE). With --cert/--key, a pair outside certbot's layout is checked instead. Nothing is changed; exit status 0 all usable, 1 at least one unusable, 2 usage error.
                """,
            arguments: [ArgumentSpec(name: "name-or-dir", help: "Lineage names or live/NAME directories.", repeatable: true, kind: .directory)],
            options: CertbotOptions.options + [
                OptionSpec(name: "user", value: "user", help: "The account the server reads the files as.", kind: .user),
                OptionSpec(name: "hostname", value: "host", help: "A name the certificate must cover (repeatable).", repeatable: true),
                OptionSpec(name: "warn-days", value: "days", help: "Warn when fewer days than this are left.", defaultText: "14", kind: .number),
                OptionSpec(name: "cert", value: "file", help: "A certificate file outside certbot's layout.", kind: .file),
                OptionSpec(name: "key", value: "file", help: "Its private key file.", kind: .file),
                OptionSpec(name: "chain", value: "file", help: "Its chain file (optional; else certificates after the first in --cert).", kind: .file),
                OptionSpec(
                    name: "config", value: "file",
                    help: "Check each target of this configuration file as its user, with its hostnames (lineage arguments then name targets).",
                    kind: .file),
            ] + OutputOptions.options,
            make: { parsed throws(UsageError) in try Check(parsed) })

        var lineages: [String]
        var certbot: CertbotOptions
        var user: String?
        var hostnames: [String]
        var warnDays: Int
        var cert: String?
        var key: String?
        var chain: String?
        var configFile: String?
        var output: OutputOptions

        init(_ parsed: ParsedArguments) throws(UsageError) {
            lineages = parsed.argumentList("name-or-dir")
            certbot = CertbotOptions(parsed)
            user = parsed.string("user")
            hostnames = parsed.strings("hostname")
            warnDays = try parsed.int("warn-days") ?? 14
            cert = parsed.string("cert")
            key = parsed.string("key")
            chain = parsed.string("chain")
            configFile = parsed.string("config")
            output = try OutputOptions(parsed)
            if configFile != nil && (cert != nil || user != nil || !hostnames.isEmpty) {
                throw UsageError("--config takes each target's user and hostnames from the file; drop --user/--hostname/--cert")
            }
            if (cert == nil) != (key == nil) {
                throw UsageError("--cert and --key go together")
            }
            if cert != nil && !lineages.isEmpty {
                throw UsageError("give either lineages or --cert/--key, not both")
            }
            if warnDays < 0 { throw UsageError("--warn-days must be 0 or more") }
        }

        nonisolated(nonsending) func run() async throws {
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
