import CertReload
import CertReloadCommandLine
import CertReloadDemo
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload demo`: the main job on an embedded certbot-style directory.
    struct Demo: RunnableCommand {
        static let spec = CommandSpec(
            name: "demo",
            abstract: "Run the check on a built-in certbot-style directory (no certbot, network or server needed).",
            discussion: """
                Builds three lineages with real OpenSSL keys and certificates in a temporary directory (healthy; archive/ blocked for the service user; caught half-way through a renewal), checks them as the service user and explains the report. Then it does the whole job on loopback: a small TLS server serves the healthy lineage, the lineage is renewed, `verify` reports the stale certificate, `deploy` reloads the server through its HTTP endpoint and proves the new certificate is served, and a mail listener without TLS shows starttls-not-offered. The directory is removed at the end. Exit status 0 when every step showed what it is meant to show.
                """,
            options: [
                OptionSpec(name: "user", value: "user", help: "The service user to check as.", defaultText: "nobody", kind: .user),
                .flag("keep", "Keep the demo directory instead of removing it."),
            ] + OutputOptions.options,
            make: { parsed throws(UsageError) in
                Demo(user: parsed.string("user") ?? "nobody", keep: parsed.flag("keep"), output: try OutputOptions(parsed))
            })

        var user: String
        var keep: Bool
        var output: OutputOptions

        nonisolated(nonsending) func run() async throws {
            let account = try Account.named(user)
            guard account.uid != geteuid() else {
                throw UsageError(
                    "the demo checks access as a service user other than the account it runs as (\(account.name))",
                    fix: "pass another account: certreload demo --user daemon")
            }
            let demo = try CertReloadDemo.Demo.build(serviceUser: account)
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
            let outcomes = CertReloadDemo.Demo.outcomes(of: report)
            let rendering = CheckRendering(color: color)
            for (scenario, _) in outcomes {
                text += "\n" + bold("── \(scenario.lineage)") + "\n  " + scenario.story + "\n\n"
                if let lineage = report.lineages.first(where: { $0.name == scenario.lineage }) {
                    text += rendering.text(lineage, now: now).split(separator: "\n", omittingEmptySubsequences: false)
                        .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n")
                }
            }
            text += "\nSame check on your own machine:  sudo certreload check --user <service-user> --hostname <name>\n"
            Output.write(text)
            text = ""

            // The whole job on loopback: verify (stale), deploy (reload + verify), no STARTTLS.
            text += "\n" + bold("The whole job, on loopback") + ": a TLS server serves healthy.example; certreload talks to it.\n"
            var logger = Logger(label: "certreload.demo")
            logger.logLevel = .critical
            let steps = try await DemoWalkthrough(demo: demo).run(logger: logger)
            for step in steps {
                text += "\n" + bold("── \(step.title)") + "\n  " + step.story + "\n\n"
                text += step.outcome.text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
            }
            text += "\nSet up your own targets: certreload config check --config /etc/certreload/certreload.toml\n"
            let failed = outcomes.filter { !$0.1 }.map(\.0.lineage) + steps.filter { !$0.asExpected }.map(\.title)
            if failed.isEmpty {
                text += "Demo complete: every step showed what it is meant to show"
                text += keep ? " (kept: \(demo.root)).\n" : "; the demo directory was removed.\n"
                Output.write(text)
            } else {
                Output.write(text)
                Output.standardError("demo: unexpected result for \(failed.joined(separator: ", "))")
                throw ExitCode(1)
            }
        }
    }
}
