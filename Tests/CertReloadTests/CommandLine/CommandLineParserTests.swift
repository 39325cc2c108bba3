import CertReload
import CertReloadCommandLine
import Testing

/// A command that only keeps what it was given.
private struct Captured: RunnableCommand {
    var parsed: ParsedArguments
    nonisolated(nonsending) func run() async throws {}
}

private let leaf = CommandSpec(
    name: "check", abstract: "Check lineages.", discussion: "First paragraph.\n\nSecond paragraph.",
    arguments: [ArgumentSpec(name: "name", help: "Lineage names.", repeatable: true)],
    options: [
        OptionSpec(name: "certbot-dir", value: "dir", help: "certbot's directory.", kind: .directory),
        OptionSpec(name: "hostname", value: "host", help: "A name (repeatable).", repeatable: true),
        OptionSpec(name: "warn-days", value: "days", help: "Warn days.", defaultText: "14", kind: .number),
        OptionSpec(name: "format", value: "format", help: "Output format.", defaultText: "text", kind: .choice(["text", "json"])),
        .flag("dry-run", "Change nothing."),
    ],
    make: { parsed in Captured(parsed: parsed) })

private let doctor = CommandSpec(
    name: "doctor", abstract: "Probe HOST.",
    arguments: [ArgumentSpec(name: "host", help: "The name clients use.", required: true)],
    make: { parsed in Captured(parsed: parsed) })

private let root = CommandSpec(
    name: "certreload", abstract: "Keep TLS servers serving the certificate.",
    subcommands: [leaf, doctor, CommandSpec(name: "config", abstract: "The configuration.", subcommands: [
        CommandSpec(name: "check", abstract: "Validate it.", make: { parsed in Captured(parsed: parsed) }),
    ])])

private enum Format: String, CaseIterable { case text, json }

private func parsed(_ words: [String]) throws -> ParsedArguments {
    guard case .run(let command) = try CommandLineParser.parse(words, root: root), let captured = command as? Captured else {
        throw UsageError("not a command to run: \(words)")
    }
    return captured.parsed
}

private func usageError(_ words: [String]) -> UsageError? {
    do {
        _ = try CommandLineParser.parse(words, root: root)
        return nil
    } catch {
        return error
    }
}

@Suite("command line: the table, the parser, help, man page and completions")
struct CommandLineParserTests {
    @Test("options before, between and after arguments; --name=value and --name value; the last of a single option wins")
    func optionForms() throws {
        let p = try parsed(["check", "a.example", "--certbot-dir", "/etc/le", "b.example", "--hostname=x.example",
                            "--hostname", "y.example", "--warn-days", "3", "--warn-days=9", "--dry-run"])
        #expect(p.commandPath == "certreload check")
        #expect(p.argumentList("name") == ["a.example", "b.example"])
        #expect(p.string("certbot-dir") == "/etc/le")
        #expect(p.strings("hostname") == ["x.example", "y.example"])
        #expect(try p.int("warn-days") == 9)
        #expect(p.flag("dry-run"))
        #expect(!p.flag("other"))
        #expect(try p.choice("format", default: Format.text) == .text)
    }

    @Test("-- ends the options; a lone - and a value with = inside are kept as they are")
    func endOfOptions() throws {
        let p = try parsed(["check", "--hostname", "a=b", "--", "--dry-run", "-"])
        #expect(p.argumentList("name") == ["--dry-run", "-"])
        #expect(p.strings("hostname") == ["a=b"])
        #expect(!p.flag("dry-run"))
        #expect(try parsed(["check", "--certbot-dir=--odd"]).string("certbot-dir") == "--odd")
    }

    @Test("every mistake is a usage error that names the word and says what to do")
    func mistakes() throws {
        let unknown = try #require(usageError(["check", "--warn-dys", "3"]))
        #expect(unknown.message == "unknown option '--warn-dys' for certreload check")
        #expect(unknown.fix?.hasPrefix("did you mean --warn-days?") == true)
        #expect(usageError(["check", "--zzzzzz"])?.fix == "certreload check --help lists its options")
        #expect(usageError(["check", "-x"])?.message == "unknown option '-x' for certreload check")
        let missing = try #require(usageError(["check", "--certbot-dir"]))
        #expect(missing.message == "--certbot-dir needs a value (dir)")
        #expect(usageError(["check", "--certbot-dir", "--dry-run"])?.message == "--certbot-dir needs a value (dir)")
        #expect(usageError(["check", "--dry-run=yes"])?.message == "--dry-run takes no value")
        #expect(usageError(["doctor"])?.message == "certreload doctor needs <host>: The name clients use.")
        #expect(usageError(["doctor", "a", "b"])?.message == "unexpected argument 'b': certreload doctor takes <host>")
        #expect(usageError(["config", "check", "extra"])?.message == "unexpected argument 'extra': certreload config check takes no arguments")
        let command = try #require(usageError(["chek"]))
        #expect(command.message == "unknown command 'chek' for certreload")
        #expect(command.fix == "commands: check, doctor, config (certreload --help)")
        #expect(usageError(["config", "bogus"])?.message == "unknown command 'bogus' for certreload config")
        #expect(usageError(["help", "nothing"])?.message == "unknown command 'nothing' for certreload")
    }

    @Test("numbers and choices are checked when read, with the option named")
    func typedValues() throws {
        #expect(throws: UsageError.self) { try parsed(["check", "--warn-days", "x"]).int("warn-days") }
        #expect(throws: UsageError.self) { try parsed(["check", "--format", "yaml"]).choice("format", default: Format.text) }
        #expect(try parsed(["check", "--format", "json"]).choice("format", default: Format.text) == .json)
        let yaml = try parsed(["check", "--format", "yaml"])
        do throws(UsageError) {
            _ = try yaml.choice("format", default: Format.text)
            Issue.record("yaml taken as a format")
        } catch {
            #expect(error.message == "--format 'yaml' is not one of text, json")
        }
    }

    @Test("help: no words, help, -h and --help anywhere; a group without a command shows its own")
    func help() throws {
        func helpText(_ words: [String]) -> String? {
            if case .help(let text)? = try? CommandLineParser.parse(words, root: root) { return text }
            return nil
        }
        let top = try #require(helpText([]))
        #expect(top.hasPrefix("OVERVIEW: Keep TLS servers serving the certificate.\n"))
        #expect(top.contains("\nSUBCOMMANDS:\n  check                   Check lineages.\n  doctor                  Probe HOST.\n"))
        #expect(helpText(["--help"]) == top)
        let check = try #require(helpText(["check", "a", "--help"]))
        #expect(helpText(["help", "check"]) == check)
        #expect(helpText(["check", "-h"]) == check)
        #expect(check.contains("USAGE: certreload check [<name> ...] [--certbot-dir <dir>] [--hostname <host> ...] [--warn-days <days>] [--format <format>] [--dry-run]\n"))
        #expect(check.contains("\nFirst paragraph.\n\nSecond paragraph.\n"))
        #expect(check.contains("  --warn-days <days>      Warn days. (default: 14)\n"))
        #expect(check.contains("  --format <format>       Output format. (values: text, json; default: text)\n"))
        #expect(helpText(["config"])?.contains("See 'certreload help config <subcommand>'") == true)
        if case .version? = try? CommandLineParser.parse(["check", "--version"], root: root) {} else {
            Issue.record("--version after a command is the version")
        }
    }

    @Test("help lines are filled to 80 columns")
    func wrapping() {
        let long = String(repeating: "word ", count: 60)
        let text = HelpText.render(CommandSpec(name: "x", abstract: long, discussion: long), path: ["x"])
        for line in text.split(separator: "\n") where !line.hasPrefix("USAGE:") {
            #expect(line.count <= 80, "\(line)")
        }
    }

    @Test("the man page: one .It Em per command, escaped text, mdoc's date")
    func manual() {
        let tricky = CommandSpec(name: "certreload", abstract: "Reload. No shell.", discussion: ".starts with a dot\n\n'quote and \\back",
                                 subcommands: root.subcommands)
        let page = Manual.page(tricky, date: "2026-12-01")
        let lines = page.split(separator: "\n").map(String.init)
        #expect(lines.contains(".Dd December 1, 2026"))
        #expect(lines.contains(".Dt CERTRELOAD 1"))
        #expect(lines.filter { $0.hasPrefix(".It Em ") } == [".It Em check", ".It Em doctor", ".It Em config", ".It Em check"])
        #expect(lines.contains("\\&.starts with a dot"))
        #expect(lines.contains("\\&'quote and \\eback"))
        #expect(lines.contains(".Nd Reload. \\&No shell"))
        #expect(lines.contains(".It Fl -format Ar format"))
        #expect(Manual.page(tricky, date: "someday").contains(".Dd someday\n"))
    }

    @Test("completions: every command and option of the table, words safe for the shells")
    func completions() {
        let bash = Completions.bash(root)
        #expect(bash.contains("compgen -W \"check doctor config help --version --help\""))
        #expect(bash.contains("    \"config check\")\n"))
        #expect(bash.contains("--certbot-dir) mapfile -t COMPREPLY < <(compgen -d -- \"$cur\"); return 0 ;;"))
        #expect(bash.contains("--format) mapfile -t COMPREPLY < <(compgen -W \"text json\" -- \"$cur\"); return 0 ;;"))
        #expect(bash.hasSuffix("complete -F _certreload certreload\n"))
        let zsh = Completions.zsh(root)
        #expect(zsh.hasPrefix("#compdef certreload\n"))
        #expect(zsh.contains("'--certbot-dir=[certbot’s directory.]:dir:_files -/'"))
        #expect(zsh.contains("'*--hostname=[A name (repeatable).]:host: '"))
        #expect(zsh.contains("'*::name:_files -/'") == false)
        #expect(zsh.contains("'*::name: '"))
    }
}
