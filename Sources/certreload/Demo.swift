import ArgumentParser
import CertReload

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload demo`: the main job on an embedded certbot-style directory.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the check on a built-in certbot-style directory (no certbot, network or server needed).",
            discussion: """
                Builds three lineages with real OpenSSL keys and certificates in a temporary directory (healthy; archive/ blocked for the service user; caught half-way through a renewal), checks them as the service user, explains the report, and removes the directory. Exit status 0 when each lineage showed what it is meant to show.
                """)

        @Option(help: ArgumentHelp("The service user to check as.", valueName: "user"))
        var user: String = "nobody"

        @Flag(help: "Keep the demo directory instead of removing it.")
        var keep = false

        @OptionGroup var output: OutputOptions

        func run() throws {
            let account = try Account.named(user)
            let demo = try CertReload.Demo.build(serviceUser: account)
            defer { if !keep { demo.remove() } }
            let now = Int64(time(nil))
            let report = try demo.check(now: now)
            if output.format == .json {
                Output.write(CheckRendering.json(report).serialized(pretty: true) + "\n")
                return
            }
            let color = Output.colorOnStandardOutput
            func bold(_ text: String) -> String { color ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
            var text = bold("certreload demo") + ": a certbot directory at \(demo.certbotDirectory.path)\n"
            text += "with three lineages, checked as the service user \(account.name) — the account a mail or web server runs as.\n"
            let outcomes = CertReload.Demo.outcomes(of: report)
            let rendering = CheckRendering(color: color)
            for (scenario, _) in outcomes {
                text += "\n" + bold("── \(scenario.lineage)") + "\n  " + scenario.story + "\n\n"
                if let lineage = report.lineages.first(where: { $0.name == scenario.lineage }) {
                    text += rendering.text(lineage, now: now).split(separator: "\n", omittingEmptySubsequences: false)
                        .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n")
                }
            }
            text += "\nSame check on your own machine:  sudo certreload check --user <service-user> --hostname <name>\n"
            let failed = outcomes.filter { !$0.1 }
            if failed.isEmpty {
                text += "Demo complete: every lineage showed what it is meant to show"
                text += keep ? " (kept: \(demo.root)).\n" : "; the demo directory was removed.\n"
                Output.write(text)
            } else {
                Output.write(text)
                Output.standardError("demo: unexpected result for \(failed.map(\.0.lineage).joined(separator: ", "))")
                throw ExitCode(1)
            }
        }
    }
}
