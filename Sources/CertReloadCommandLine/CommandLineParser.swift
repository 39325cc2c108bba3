public import CertReload

/// What a command line asks for.
public enum Invocation {
    case run(any RunnableCommand)
    case help(String)
    case version
    case completion(String)
    case manual(date: String)
}

/// Sorts argv by the table. Options may come before, between and after the arguments;
/// `--name=value` and `--name value` are the same; `--` ends the options.
public enum CommandLineParser {
    /// Options every command has; printed in help, never stored.
    public static let helpOption = OptionSpec.flag("help", "Show help information.")
    public static let versionOption = OptionSpec.flag("version", "Show the version.")

    public static func parse(_ words: [String], root: CommandSpec) throws(UsageError) -> Invocation {
        var command = root
        var path = [root.name]
        var rest = words[...]

        // The root's own words: help, version, the generators the packaging scripts run.
        switch rest.first {
        case nil: return .help(HelpText.render(root, path: path))
        case "help":
            rest = rest.dropFirst()
            var shown = root
            for name in rest {
                guard let sub = shown.subcommand(name) else {
                    throw unknownCommand(name, in: shown, path: path)
                }
                shown = sub
                path.append(name)
            }
            return .help(HelpText.render(shown, path: path))
        case "--version": return .version
        case "--generate-completion-script":
            guard rest.count == 2, let shell = rest.last, ["bash", "zsh"].contains(shell) else {
                throw UsageError("--generate-completion-script takes bash or zsh", fix: "certreload --generate-completion-script bash")
            }
            return .completion(shell == "bash" ? Completions.bash(root) : Completions.zsh(root))
        case "--generate-manual":
            guard rest.count == 2, let date = rest.last else {
                throw UsageError("--generate-manual takes the page's date", fix: "certreload --generate-manual 2026-12-01")
            }
            return .manual(date: date)
        default: break
        }

        // The command: as many words as name subcommands.
        while !command.subcommands.isEmpty, let word = rest.first, !word.hasPrefix("-") {
            guard let sub = command.subcommand(word) else { throw unknownCommand(word, in: command, path: path) }
            command = sub
            path.append(word)
            rest = rest.dropFirst()
        }
        let commandPath = path.joined(separator: " ")
        var parsed = ParsedArguments(commandPath: commandPath)
        var positionals: [String] = []
        var optionsEnded = false
        while let word = rest.popFirst() {
            if optionsEnded || word == "-" || !word.hasPrefix("-") {
                positionals.append(word)
                continue
            }
            if word == "--" {
                optionsEnded = true
                continue
            }
            if word == "-h" || word == "--help" { return .help(HelpText.render(command, path: path)) }
            if word == "--version" { return .version }
            guard word.hasPrefix("--") else {
                throw UsageError("unknown option '\(word)' for \(commandPath)", fix: "\(commandPath) --help lists its options (all are long: --name)")
            }
            let body = word.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            let inline = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
            guard let option = command.option(name) else {
                throw UsageError("unknown option '--\(name)' for \(commandPath)", fix: suggestion(name, command, commandPath))
            }
            if option.isFlag {
                if inline != nil { throw UsageError("--\(name) takes no value", fix: "write --\(name) alone") }
                parsed.flags.insert(name)
                continue
            }
            let value: String
            if let inline {
                value = inline
            } else if let next = rest.first, !next.hasPrefix("--") {
                value = next
                rest = rest.dropFirst()
            } else {
                throw UsageError(
                    "--\(name) needs a value (\(option.value ?? "value"))",
                    fix: "\(commandPath) --\(name) \(option.value.map { $0.uppercased() } ?? "VALUE"); a value that starts with -- is written --\(name)=VALUE")
            }
            parsed.values[name, default: []].append(value)
        }

        guard let make = command.make else {
            if positionals.isEmpty { return .help(HelpText.render(command, path: path)) }
            throw unknownCommand(positionals[0], in: command, path: path)
        }
        // Arguments in order; the repeatable last one takes the rest.
        var index = 0
        for argument in command.arguments {
            if argument.repeatable {
                parsed.arguments[argument.name] = Array(positionals[index...])
                index = positionals.count
            } else if index < positionals.count {
                parsed.arguments[argument.name] = [positionals[index]]
                index += 1
            } else if argument.required {
                throw UsageError("\(commandPath) needs <\(argument.name)>: \(argument.help)", fix: "\(HelpText.usage(command, path: path))")
            }
        }
        if index < positionals.count {
            let extra = positionals[index]
            let takes = command.arguments.isEmpty ? "takes no arguments" : "takes " + command.arguments.map { "<\($0.name)>" }.joined(separator: " ")
            throw UsageError("unexpected argument '\(extra)': \(commandPath) \(takes)", fix: "\(commandPath) --help")
        }
        return .run(try make(parsed))
    }

    static func unknownCommand(_ word: String, in command: CommandSpec, path: [String]) -> UsageError {
        let here = path.joined(separator: " ")
        return UsageError(
            "unknown command '\(word)' for \(here)",
            fix: "commands: " + command.subcommands.map(\.name).joined(separator: ", ") + " (\(here) --help)")
    }

    /// "did you mean --certbot-dir?" for a near miss, else where the options are listed.
    static func suggestion(_ name: String, _ command: CommandSpec, _ commandPath: String) -> String {
        let near = command.options.map(\.name).filter { candidate in
            candidate.hasPrefix(name) || name.hasPrefix(candidate) || distance(candidate, name) <= 2
        }
        if let first = near.first { return "did you mean --\(first)? (\(commandPath) --help lists its options)" }
        return "\(commandPath) --help lists its options"
    }

    /// Levenshtein distance of two short words.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }
}

/// `--help`, laid out for an 80-column terminal.
public enum HelpText {
    static let width = 80
    static let column = 26

    public static func render(_ command: CommandSpec, path: [String]) -> String {
        var out = "OVERVIEW: " + wrap(command.abstract, indent: 0, first: 10).dropFirst(10) + "\n"
        if !command.discussion.isEmpty {
            out += "\n" + command.discussion.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.isEmpty ? "" : wrap(String($0), indent: 0) }.joined(separator: "\n") + "\n"
        }
        out += "\nUSAGE: " + usage(command, path: path) + "\n"
        if !command.arguments.isEmpty {
            out += "\nARGUMENTS:\n"
            for argument in command.arguments { out += entry("<\(argument.name)>", argument.help) }
        }
        out += "\nOPTIONS:\n"
        for option in command.options + [CommandLineParser.versionOption, CommandLineParser.helpOption] {
            var help = option.help
            if case .choice(let words) = option.kind {
                help += " (values: \(words.joined(separator: ", "))\(option.defaultText.map { "; default: \($0)" } ?? ""))"
            } else if let defaultText = option.defaultText {
                help += " (default: \(defaultText))"
            }
            out += entry(option.name == "help" ? "-h, --help" : "--\(option.name)\(option.value.map { " <\($0)>" } ?? "")", help)
        }
        if !command.subcommands.isEmpty {
            out += "\nSUBCOMMANDS:\n"
            for sub in command.subcommands { out += entry(sub.name, sub.abstract) }
            out += "\n  See '\(path[0]) help \((path.dropFirst() + ["<subcommand>"]).joined(separator: " "))' for detailed help.\n"
        }
        return out
    }

    /// "certreload check [<name-or-dir> ...] [--certbot-dir <dir>] …"
    public static func usage(_ command: CommandSpec, path: [String]) -> String {
        var words = path
        if !command.subcommands.isEmpty && command.make == nil { words.append("<subcommand>") }
        for argument in command.arguments {
            let word = "<\(argument.name)>" + (argument.repeatable ? " ..." : "")
            words.append(argument.required ? word : "[\(word)]")
        }
        for option in command.options {
            words.append("[--\(option.name)\(option.value.map { " <\($0)>" } ?? "")\(option.repeatable ? " ..." : "")]")
        }
        return words.joined(separator: " ")
    }

    private static func entry(_ label: String, _ help: String) -> String {
        let head = "  " + label
        if head.count < column - 1 {
            let text = wrap(help, indent: column)
            return head + String(repeating: " ", count: column - head.count) + text.dropFirst(column) + "\n"
        }
        return head + "\n" + wrap(help, indent: column) + "\n"
    }

    /// Words filled to `width`, every line indented by `indent` (the first by `first`).
    static func wrap(_ text: String, indent: Int, first: Int? = nil) -> String {
        var lines: [String] = []
        var line = String(repeating: " ", count: first ?? indent)
        var empty = true
        for word in text.split(separator: " ") {
            if !empty && line.count + 1 + word.count > width {
                lines.append(line)
                line = String(repeating: " ", count: indent)
                empty = true
            }
            line += (empty ? "" : " ") + word
            empty = false
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}
