import CertReload
import CertReloadCommandLine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where certbot keeps its lineages.
struct CertbotOptions {
    static let options = [
        OptionSpec(name: "certbot-dir", value: "dir", help: "certbot's configuration directory (env CERTRELOAD_CERTBOT_DIR).", kind: .directory),
    ]

    var certbotDirectory: String?

    init(_ parsed: ParsedArguments) {
        certbotDirectory = parsed.string("certbot-dir")
    }

    var directory: CertbotDirectory {
        if let certbotDirectory { return CertbotDirectory(certbotDirectory) }
        if let env = getenv("CERTRELOAD_CERTBOT_DIR"), env.pointee != 0 {
            return CertbotDirectory(String(cString: env))
        }
        return CertbotDirectory("/etc/letsencrypt")
    }
}

enum OutputFormat: String, CaseIterable {
    case text, json
}

/// How a report is printed.
struct OutputOptions {
    static let options = [
        OptionSpec(
            name: "format", value: "format", help: "Output format: text for people, json for machines.",
            defaultText: "text", kind: .choice(OutputFormat.allCases.map(\.rawValue))),
    ]

    var format: OutputFormat

    init(_ parsed: ParsedArguments) throws(UsageError) {
        format = try parsed.choice("format", default: .text)
    }
}

/// Where the configuration file is.
struct ConfigFileOptions {
    static let options = [
        OptionSpec(
            name: "config", value: "file",
            help: "The configuration file (env CERTRELOAD_CONFIG; default \(ConfigurationLoader.defaultPath)).", kind: .file),
    ]

    var file: String?

    init(_ parsed: ParsedArguments) {
        file = parsed.string("config")
    }

    init(path: String) {
        file = path
    }

    var path: String { ConfigurationLoader.path(option: file) }
}

/// A command's exit status other than 0, thrown by `run()`; its report is already printed.
struct ExitCode: Error {
    var rawValue: Int32
    init(_ rawValue: Int32) { self.rawValue = rawValue }
}
