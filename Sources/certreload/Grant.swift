import CertReload
import CertReloadCommandLine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CertReloadCommand {
    /// `certreload grant`: give a service user lasting read access to certbot lineages.
    struct Grant: RunnableCommand {
        static let spec = CommandSpec(
            name: "grant",
            abstract: "Let a service user read certbot lineages now and after every renewal, in one step.",
            discussion: """
                Applies the whole fix `certreload check --user USER` prints: group search on certbot's live/, archive/ and each lineage directory, group read on every archive key of every version (certbot copies the newest key's group and group bits to each new key). It only adds group bits (g+x, g+r) and changes groups; it never gives "other" anything and never touches renewal/ or accounts/. When a key's group already serves another account, it uses a shared group (--group, or certreload-certs, created) and adds both accounts. Then it checks by trying as USER. A second run changes nothing. Exit status 0 USER can read every lineage, 1 it still cannot, 2 usage error.
                """,
            arguments: [
                ArgumentSpec(name: "user", help: "The account the server reads the files as.", required: true, kind: .user),
                ArgumentSpec(name: "lineage", help: "Lineage names (default: every lineage in live/).", repeatable: true),
            ],
            options: [
                OptionSpec(name: "group", value: "group", help: "Grant through this group (created if missing; USER is added)."),
            ] + CertbotOptions.options + [
                .flag("dry-run", "Print the plan and change nothing."),
            ],
            make: { parsed throws(UsageError) in try Grant(parsed) })

        var user: String
        var lineages: [String]
        var group: String?
        var certbot: CertbotOptions
        var dryRun: Bool

        init(_ parsed: ParsedArguments) throws(UsageError) {
            user = parsed.argument("user") ?? ""
            lineages = parsed.argumentList("lineage")
            group = parsed.string("group")
            certbot = CertbotOptions(parsed)
            dryRun = parsed.flag("dry-run")
            if let group, !Grant.isGroupName(group) {
                throw UsageError("--group '\(group)' is not a group name (lower-case letters, digits, '-', '_'; a letter or '_' first)")
            }
        }

        static func isGroupName(_ name: String) -> Bool {
            guard let first = name.utf8.first, name.utf8.count <= 32 else { return false }
            let lowerOrUnderscore: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7a) || $0 == UInt8(ascii: "_") }
            return lowerOrUnderscore(first)
                && name.utf8.allSatisfy { lowerOrUnderscore($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
        }

        nonisolated(nonsending) func run() async throws {
            let account = try Account.named(user)
            if account.uid == 0 {
                throw UsageError("\(account.name) is root: root reads every file, there is nothing to grant", fix: nil)
            }
            let directory = certbot.directory
            let sources: [LineageSource]
            if lineages.isEmpty {
                sources = try directory.lineages()
            } else {
                try directory.requireExists()
                sources = try lineages.map { name throws(UsageError) in try directory.lineage(name) }
            }
            if sources.isEmpty {
                throw UsageError("no lineages in \(directory.liveDirectory)", fix: "issue one with certbot first, or check --certbot-dir")
            }
            if !dryRun && geteuid() != 0 {
                throw UsageError("grant changes groups and modes in certbot's tree: run it as root", fix: "sudo certreload grant \(user) \(lineages.joined(separator: " "))")
            }
            let names = sources.map(\.name)
            let plan = AccessFixPlanner(certbotDirectory: directory.path, account: account, group: group).plan(lineages: names)
            let rendering = CheckRendering(color: Output.colorOnStandardOutput)
            var out = ""
            if plan.isEmpty {
                out += "Nothing to change: \(account.name) can reach every directory and key of \(names.joined(separator: ", ")), and every key is readable through group \(plan.group), which certbot carries over to new keys.\n"
            } else if dryRun {
                out += "Dry run: nothing changed. The plan for \(account.name):\n"
                out += rendering.fixPlanText(plan, indent: "")
                Output.write(out)
                return
            } else {
                out += "Granting \(account.name) read access to \(names.joined(separator: ", ")) through group \(plan.group):\n"
                if !plan.sharedWith.isEmpty {
                    out += "  \(plan.sharedWith.joined(separator: ", ")) already read these files through their group: adding them to \(plan.group) too, so they keep access.\n"
                }
                var failed = false
                for outcome in AccessFixApplier().apply(plan) {
                    if let failure = outcome.failure {
                        out += "  failed:    \(failure)\n"
                        failed = true
                    } else {
                        out += "  \(outcome.changed ? "changed:  " : "unchanged:") \(outcome.line)\n"
                    }
                }
                for note in plan.notes { out += "  note: \(note)\n" }
                if failed { out += "Some changes failed: the check below says what is still missing.\n" }
            }

            // Prove it: try as the user (groups re-read: usermod may have just added one).
            let refreshed = try Account.named(user)
            let report = try Checker(options: CheckOptions(serviceUser: refreshed), accessMethod: geteuid() == 0 ? .tried : nil).check(sources)
            for lineage in report.lineages {
                let access = lineage.problems.filter { ProblemCode.access.contains($0.code) }
                if access.isEmpty {
                    let next = lineage.files[.privkey].flatMap { FilePermissions.of($0.realPath) }.map { PermissionModel.nextRenewalKey(after: $0) }
                    let forecast = next.map { "; after the next renewal the new key (mode \(octalMode($0.mode)), group \(Account.groupName($0.group))) stays readable" } ?? ""
                    out += "\(lineage.name): \(refreshed.name) can read every file (\(report.accessMethod == .tried ? "tried as \(refreshed.name)" : "evaluated"))\(forecast).\n"
                } else {
                    for problem in access {
                        out += "\(lineage.name): \(problem.severity.rawValue) [\(problem.code.rawValue)] \(problem.message)\n"
                        if let fix = problem.fix { out += "  fix: \(fix)\n" }
                    }
                }
            }
            Output.write(out)
            let stillBlocked = report.lineages.contains { lineage in
                lineage.problems.contains { [.notTraversable, .unreadable].contains($0.code) }
            }
            if stillBlocked { throw ExitCode(1) }
        }

        private func octalMode(_ mode: mode_t) -> String {
            let text = String(mode, radix: 8)
            return String(repeating: "0", count: max(0, 4 - text.count)) + text
        }
    }
}
