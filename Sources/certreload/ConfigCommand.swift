import CertReload
import CertReloadCommandLine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload config …`: work with the configuration file.
    static let config = CommandSpec(
        name: "config", abstract: "Work with certreload's configuration file.", subcommands: [ConfigCheck.spec])

    /// `certreload config check`: validate the configuration without acting on it.
    struct ConfigCheck: RunnableCommand {
        static let spec = CommandSpec(
            name: "check",
            abstract: "Validate the configuration file and summarise its targets.",
            discussion: """
                Reads the file and checks every key and value; nothing is reloaded, probed or resolved. \
                Secret files are only checked not to be readable by other users; their contents are \
                never read or printed.

                Exit status: 0 valid, 2 invalid (each problem is printed as FILE:LINE: KEY: message, with a fix).
                """,
            options: ConfigFileOptions.options,
            make: { parsed throws(UsageError) in ConfigCheck(config: ConfigFileOptions(parsed)) })

        var config: ConfigFileOptions

        nonisolated(nonsending) func run() async throws {
            let path = config.path
            let result = ConfigurationLoader.validate(path: path)
            guard let configuration = result.configuration, result.errors.isEmpty else {
                for error in result.errors {
                    Output.standardError("certreload: \(error)")
                    if let fix = error.fix { Output.standardError("  fix: \(fix)") }
                }
                let count = result.errors.count
                Output.standardError("certreload: \(path) is invalid (\(count) problem\(count == 1 ? "" : "s"))")
                throw ExitCode(2)
            }
            Output.write(ConfigSummary.text(configuration, watch: result.watch))
        }
    }
}

/// A short, secret-free summary of a valid configuration.
enum ConfigSummary {
    static func text(_ configuration: Configuration, watch: WatchSettings) -> String {
        var out = "\(configuration.path): valid\n"
        out += "  certbot-dir \(configuration.certbotDirectory), state-dir \(configuration.stateDirectory), warn-days \(configuration.warnDays)\n"
        let timing = [("settle", watch.settle), ("settle-max", watch.settleMax), ("recheck", watch.recheck), ("poll-interval", watch.pollInterval)]
            .compactMap { name, value in value.map { "\(name) \(seconds($0))" } }
        if !timing.isEmpty { out += "  " + timing.joined(separator: ", ") + "\n" }
        if configuration.targets.isEmpty { out += "  no targets: add a [target.NAME] table\n" }
        for target in configuration.targets {
            out += "target \(target.name) (line \(target.location.line))\n"
            if !target.lineages.isEmpty {
                out += "  lineages  \(listed(target.lineages))\n"
            } else {
                out += "  cert      \(target.certFile ?? "-")\n  key       \(target.keyFile ?? "-")\n"
                if let chain = target.chainFile { out += "  chain     \(chain)\n" }
            }
            if let user = target.user { out += "  user      \(user)\n" }
            if !target.hostnames.isEmpty { out += "  hostnames \(listed(target.hostnames))\n" }
            out += "  reload    \(reload(target.reload))\n"
            for endpoint in target.verify { out += "  verify    \(endpoint.url)\n" }
            if let connect = target.connect { out += "  connect   \(connect)\n" }
            if let caFile = target.caFile { out += "  ca-file   \(caFile)\n" }
            if let warning = target.insecureWarning { out += "  warning [\(warning.code.rawValue)] \(warning.message)\n" }
        }
        return out
    }

    /// A list on one line: all of a short one, else its first 8 and how many more (a hosting
    /// box's target may name 10,000 lineages).
    static func listed(_ names: [String]) -> String {
        names.abbreviated(separator: ", ") { hidden, total in " and \(hidden) more (\(total) in all)" }
    }

    /// The kind and where it goes; a secret is named by its source kind only, never its value.
    static func reload(_ reload: ReloadConfiguration) -> String {
        switch reload {
        case .stalwart(let url, let api, let token, let username, _):
            let auth = token != nil ? "token from \(source(token!))" : "user \(username ?? "?") with password"
            return "stalwart \(url) (api \(api.rawValue), \(auth))"
        case .caddy(let url):
            return "caddy \(url)"
        case .http(let url, let method, let headers, _, let token, let expectStatus):
            var text = "http \(method) \(url)"
            if !headers.isEmpty { text += " (\(headers.count) header\(headers.count == 1 ? "" : "s"))" }
            if let token { text += " (token from \(source(token)))" }
            text += expectStatus.isEmpty ? ", expects 2xx" : ", expects \(expectStatus.map(String.init).joined(separator: "/"))"
            return text
        case .systemd(let unit, let mode):
            return "systemd \(mode.rawValue) \(unit)"
        case .signal(let name, let pidFile, let unit):
            return "signal \(name) to " + (pidFile.map { "the pid in \($0)" } ?? "the main process of \(unit ?? "?")")
        case .command(let argv, let timeout):
            return "command \(argv.joined(separator: " ")) (timeout \(seconds(timeout)))"
        }
    }

    private static func source(_ secret: SecretSource) -> String {
        switch secret {
        case .file(let path): return "file \(path)"
        case .credential(let name): return "credential \(name)"
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }
}
