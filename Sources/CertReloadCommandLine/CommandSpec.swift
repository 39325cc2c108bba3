public import CertReload

/// certreload's command line as a table: each command, its arguments and options, written once.
/// The parser, `--help`, the man page and the shell completions are all read from it. (It
/// replaced swift-argument-parser, whose reflection cost 5.6 M instructions at every start —
/// half of `certreload --version` — and 12.7 M of a one-lineage `check`: BENCHMARKS.md.)

/// What a value is, for completion: a file, a directory, an account, one of a few words.
public enum ValueKind: Sendable, Equatable {
    case text, file, directory, user, number
    case choice([String])
}

/// An option (`--name VALUE`) or, without a value name, a flag (`--name`).
public struct OptionSpec: Sendable {
    public var name: String
    /// The value's name in help ("file"); nil for a flag.
    public var value: String?
    public var help: String
    public var repeatable: Bool
    /// Shown as "(default: …)" in help.
    public var defaultText: String?
    public var kind: ValueKind

    public init(name: String, value: String?, help: String, repeatable: Bool = false, defaultText: String? = nil, kind: ValueKind = .text) {
        (self.name, self.value, self.help, self.repeatable, self.defaultText, self.kind) = (name, value, help, repeatable, defaultText, kind)
    }

    public static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, value: nil, help: help)
    }

    public var isFlag: Bool { value == nil }
}

/// A positional argument; at most the last of a command is repeatable.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var repeatable: Bool
    public var required: Bool
    public var kind: ValueKind

    public init(name: String, help: String, repeatable: Bool = false, required: Bool = false, kind: ValueKind = .text) {
        (self.name, self.help, self.repeatable, self.required, self.kind) = (name, help, repeatable, required, kind)
    }
}

/// A command that has been parsed and is ready to run. `run` starts on its caller's executor
/// (the main thread): a command that never awaits (`config check`, `grant`) then starts no
/// pool thread at all — and under systemd each new pool thread of the main task's QoS logs
/// "Failed to set thread priority" (nice -4 refused without CAP_SYS_NICE).
public protocol RunnableCommand {
    nonisolated(nonsending) func run() async throws
}

/// One command: a leaf that runs, or a group of subcommands (`config`).
public struct CommandSpec: Sendable {
    public typealias Make = @Sendable (ParsedArguments) throws(UsageError) -> any RunnableCommand
    public var name: String
    public var abstract: String
    public var discussion: String
    public var arguments: [ArgumentSpec]
    public var options: [OptionSpec]
    public var subcommands: [CommandSpec]
    /// Builds the command from what was parsed (and validates it); nil for a group.
    public var make: Make?

    public init(
        name: String, abstract: String, discussion: String = "", arguments: [ArgumentSpec] = [], options: [OptionSpec] = [],
        subcommands: [CommandSpec] = [], make: Make? = nil
    ) {
        (self.name, self.abstract, self.discussion, self.arguments, self.options, self.subcommands, self.make) =
            (name, abstract, discussion, arguments, options, subcommands, make)
    }

    public func option(_ name: String) -> OptionSpec? { options.first { $0.name == name } }
    public func subcommand(_ name: String) -> CommandSpec? { subcommands.first { $0.name == name } }
}

/// The words of one command line, sorted by the command's table.
public struct ParsedArguments: Sendable {
    /// "certreload check": for messages.
    public var commandPath: String
    public var values: [String: [String]] = [:]
    public var flags: Set<String> = []
    public var arguments: [String: [String]] = [:]

    public init(commandPath: String) { self.commandPath = commandPath }

    /// The option's value (the last one when given more than once).
    public func string(_ name: String) -> String? { values[name]?.last }
    public func strings(_ name: String) -> [String] { values[name] ?? [] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }
    public func argument(_ name: String) -> String? { arguments[name]?.first }
    public func argumentList(_ name: String) -> [String] { arguments[name] ?? [] }

    public func int(_ name: String) throws(UsageError) -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw invalid(name, text, "a whole number") }
        return value
    }

    public func double(_ name: String) throws(UsageError) -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text), value.isFinite else { throw invalid(name, text, "a number of seconds such as 2 or 0.5") }
        return value
    }

    public func choice<Value: RawRepresentable & CaseIterable>(_ name: String, default value: Value) throws(UsageError) -> Value where Value.RawValue == String {
        guard let text = string(name) else { return value }
        guard let chosen = Value(rawValue: text) else {
            throw invalid(name, text, "one of " + Value.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return chosen
    }

    private func invalid(_ name: String, _ text: String, _ expected: String) -> UsageError {
        UsageError("--\(name) '\(text)' is not \(expected)", fix: "\(commandPath) --help describes --\(name)")
    }
}
