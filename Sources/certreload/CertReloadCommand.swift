import CertReload
import CertReloadCommandLine
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The root command: it only lists subcommands.
enum CertReloadCommand {
    static let version = "0.1.0"

    static let root = CommandSpec(
        name: "certreload",
        abstract: "Keep TLS servers serving the certificate certbot just renewed, and say why when they cannot.",
        discussion: """
            Exit status: 0 everything usable (warnings allowed), 1 at least one lineage unusable, 2 the invocation itself is wrong (unknown user, missing certbot directory, unknown lineage).
            """,
        subcommands: [Check.spec, Doctor.spec, Grant.spec, Deploy.spec, Reload.spec, Verify.spec, Watch.spec, config, Demo.spec])
}

/// Exit status 2 for every mistake in the invocation.
@main
enum Main {
    static func main() async {
        // Before any task runs: certreload's pool, whose idle threads never wake
        // (Sources/CertReload/Support/GlobalExecutor.swift).
        GlobalExecutor.install()
        // A peer that closes a socket early is an error to report, never a reason to die
        // (OpenSSL writes close_notify with write(2)). Commands run get SIGPIPE back.
        signal(SIGPIPE, SIG_IGN)
        LoggingBackend.bootstrap()
        do {
            switch try CommandLineParser.parse(Array(CommandLine.arguments.dropFirst()), root: CertReloadCommand.root) {
            case .run(let command): try await command.run()
            case .help(let text): Output.write(text)
            case .version: Output.write(CertReloadCommand.version + "\n")
            case .completion(let script): Output.write(script)
            case .manual(let date): Output.write(Manual.page(CertReloadCommand.root, date: date))
            }
        } catch let error as UsageError {
            Output.standardError("certreload: \(error.message)")
            if let fix = error.fix { Output.standardError("  fix: \(fix)") }
            exit(2)
        } catch let error as SystemError {
            Output.standardError("certreload: \(error)")
            exit(1)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            Output.standardError("certreload: \(error)")
            exit(2)
        }
        exit(0)
    }
}

enum Output {
    static func standardError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        writeAll(2, line)
    }

    /// Colour only on a terminal, and never with NO_COLOR set or TERM=dumb.
    static var colorOnStandardOutput: Bool {
        if getenv("NO_COLOR") != nil { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return isatty(1) == 1
    }

    static func write(_ text: String) {
        writeAll(1, text)
    }

    /// One report, one write(2); standard streams are not buffered here.
    private static func writeAll(_ fd: Int32, _ text: String) {
        try? Descriptor.writeAll(fd, text)
    }
}
