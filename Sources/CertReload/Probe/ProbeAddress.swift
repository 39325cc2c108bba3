#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The plaintext dialog that upgrades a connection to TLS.
public enum StartTLSDialog: String, Sendable, Equatable {
    case smtp, imap, pop3
}

/// What the probe needs from a verify URL parsed by `VerifyEndpoint(parsing:)`.
extension VerifyEndpoint {
    /// The STARTTLS dialog of the scheme, or nil for implicit TLS (smtps, submissions, imaps, pop3s, https, tls).
    public var startTLS: StartTLSDialog? {
        switch scheme {
        case "smtp", "submission": return .smtp
        case "imap": return .imap
        case "pop3": return .pop3
        default: return nil
        }
    }

    /// `host:port`, with brackets around an IPv6 literal.
    public var authority: String { ProbeAddress.authority(host: host, port: UInt16(clamping: port)) }

    var probePort: UInt16 { UInt16(clamping: port) }

    /// `scheme://host:port`, the name problems carry.
    public var url: String { "\(scheme)://\(authority)" }
}

/// Host and address helpers for the probe.
enum ProbeAddress {
    static func authority(host: String, port: UInt16) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    /// The one host-name grammar (configuration, verify URLs, `connect`): letters, digits,
    /// '-' and '_' in dot-separated labels of 1-63 bytes, 253 in all, no label starting or
    /// ending with '-'. With `wildcard`, a first label `*` is allowed (`*.example.com`). A
    /// trailing dot is refused: certificates and SNI never carry one.
    static func isHostName(_ text: String, wildcard: Bool = false) -> Bool {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        if wildcard, bytes.count > 2, bytes[0] == UInt8(ascii: "*"), bytes[1] == UInt8(ascii: ".") {
            bytes.removeFirst(2)
        }
        for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63 else { return false }
            guard label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
            for byte in label {
                let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                guard ok else { return false }
            }
        }
        return true
    }
}

/// Where to dial: the URL's host, or a `connect` override — an address or host name without
/// a port (`127.0.0.1`, `::1`, `[::1]`, `mx.internal`); the port is always the URL's.
struct DialTarget: Sendable, Equatable {
    var host: String
    var port: UInt16

    /// Parses `connect` with the one grammar the loader also checks it with; nil when malformed.
    init?(connect text: String, defaultPort: UInt16) {
        var host = Substring(text)
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = host.dropFirst().dropLast()
            guard ProbeAddress.isIPv6(String(host)) else { return nil }
        }
        guard ProbeAddress.isHostName(String(host)) || ProbeAddress.isIPAddress(String(host)) else { return nil }
        self.host = String(host)
        port = defaultPort
    }

    init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    var authority: String { ProbeAddress.authority(host: host, port: port) }
}
