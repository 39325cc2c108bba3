import ArgumentParser
import CertReload
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The root command: it only lists subcommands.
struct CertReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certreload",
        abstract: "Keep TLS servers serving the certificate certbot just renewed, and say why when they cannot.",
        discussion: """
            Exit status: 0 everything usable (warnings allowed), 1 at least one lineage unusable, 2 the invocation itself is wrong (unknown user, missing certbot directory, unknown lineage).
            """,
        version: "0.1.0",
        subcommands: [Check.self, Doctor.self, Grant.self, Deploy.self, Reload.self, Verify.self, Watch.self, Config.self, Demo.self])
}

/// Exit status 2 for every mistake in the invocation, ArgumentParser's own included.
@main
enum Main {
    static func main() async {
        // A peer that closes a socket early is an error to report, never a reason to die
        // (OpenSSL writes close_notify with write(2)). Commands run get SIGPIPE back.
        signal(SIGPIPE, SIG_IGN)
        LoggingBackend.bootstrap()
        do {
            var command = try CertReloadCommand.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as UsageError {
            Output.standardError("certreload: \(error.message)")
            if let fix = error.fix { Output.standardError("  fix: \(fix)") }
            exit(2)
        } catch let error as SystemError {
            Output.standardError("certreload: \(error)")
            exit(1)
        } catch {
            let code = CertReloadCommand.exitCode(for: error)
            if code == .success {
                CertReloadCommand.exit(withError: error)
            }
            if error is ExitCode {
                exit(code.rawValue)
            }
            Output.standardError(CertReloadCommand.fullMessage(for: error))
            exit(2)
        }
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
