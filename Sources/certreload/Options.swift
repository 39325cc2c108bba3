import ArgumentParser
import CertReload

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where certbot keeps its lineages.
struct CertbotOptions: ParsableArguments {
    @Option(
        name: .customLong("certbot-dir"),
        help: ArgumentHelp(
            "certbot's configuration directory (env CERTRELOAD_CERTBOT_DIR).", valueName: "dir"))
    var certbotDirectory: String?

    var directory: CertbotDirectory {
        if let certbotDirectory { return CertbotDirectory(certbotDirectory) }
        if let env = getenv("CERTRELOAD_CERTBOT_DIR"), env.pointee != 0 {
            return CertbotDirectory(String(cString: env))
        }
        return CertbotDirectory("/etc/letsencrypt")
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// How a report is printed.
struct OutputOptions: ParsableArguments {
    @Option(help: "Output format: text for people, json for machines.")
    var format: OutputFormat = .text
}
