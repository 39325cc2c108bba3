#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A place to check which certificate a server serves: `smtp://mail.example.com:25`.
///
/// It does not resolve the host; a path is accepted (and ignored) only for `https`.
public struct VerifyEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// The plaintext dialog that upgrades a connection to TLS.
    public enum StartTLSDialog: String, Sendable, Equatable {
        case smtp, imap, pop3
    }

    public enum Scheme: String, Sendable, Equatable, CaseIterable {
        case smtp, submission, smtps, submissions, imap, imaps, pop3, pop3s, https, tls

        /// The port used when the URL names none (nil: the URL must name one).
        public var defaultPort: UInt16? {
            switch self {
            case .smtp: return 25
            case .submission: return 587
            case .smtps, .submissions: return 465
            case .imap: return 143
            case .imaps: return 993
            case .pop3: return 110
            case .pop3s: return 995
            case .https: return 443
            case .tls: return nil
            }
        }

        /// The STARTTLS dialog, or nil for implicit TLS.
        public var startTLS: StartTLSDialog? {
            switch self {
            case .smtp, .submission: return .smtp
            case .imap: return .imap
            case .pop3: return .pop3
            case .smtps, .submissions, .imaps, .pop3s, .https, .tls: return nil
            }
        }
    }

    /// A verify URL that cannot be used, naming the URL and what is wrong with it.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var url: String
        public var reason: String

        public var description: String { "verify URL \"\(url)\": \(reason)" }
    }

    /// The URL as written.
    public let url: String
    public let scheme: Scheme
    /// The host without brackets, lower-cased: a DNS name, an IPv4 or an IPv6 literal.
    public let host: String
    public let port: UInt16

    public var startTLS: StartTLSDialog? { scheme.startTLS }

    /// `host:port`, with brackets around an IPv6 literal.
    public var authority: String { VerifyEndpoint.authority(host: host, port: port) }

    public var description: String { url }

    public init(scheme: Scheme, host: String, port: UInt16? = nil) throws(ParseError) {
        let port = port ?? scheme.defaultPort
        let url = "\(scheme.rawValue)://\(VerifyEndpoint.authority(host: host, port: port ?? 0))"
        guard let port, port != 0 else { throw ParseError(url: url, reason: "the tls scheme needs a port") }
        guard VerifyEndpoint.isHostName(host) || VerifyEndpoint.isIPAddress(host) else {
            throw ParseError(url: url, reason: "\"\(host)\" is not a host name or IP address")
        }
        self.url = url
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = port
    }

    /// Parses `scheme://host[:port][/]`; IPv6 literals in brackets (`imaps://[2001:db8::1]`).
    public init(parsing url: String) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(url: url, reason: reason) }
        guard let separator = url.firstRange(of: "://") else {
            throw fail("expected scheme://host[:port], such as smtp://mail.example.com:25")
        }
        let schemeText = url[..<separator.lowerBound].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            let known = Scheme.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("unknown scheme \"\(schemeText)\" (known: \(known))")
        }
        var rest = url[separator.upperBound...]
        var path = Substring("")
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            path = rest[slash...]
            rest = rest[..<slash]
        }
        if !path.isEmpty && path != "/" && scheme != .https {
            throw fail("a \(scheme.rawValue) URL has no path, query or fragment (found \"\(path)\")")
        }
        if let at = rest.lastIndex(of: "@") {
            // Never echo what may be a password.
            let shown = "\(url[..<separator.upperBound])…@\(rest[rest.index(after: at)...])\(path)"
            throw ParseError(url: shown, reason: "user names or passwords do not belong in a verify URL")
        }

        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("an IPv6 literal is missing its \"]\"") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            guard VerifyEndpoint.isIPv6(host) else { throw fail("\"\(host)\" is not an IPv6 address") }
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("expected \":port\" after \"]\"") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
            if portText?.contains(":") == true {
                throw fail("an IPv6 address must be written in brackets, such as smtp://[2001:db8::1]:25")
            }
        } else {
            host = String(rest)
        }
        if host.isEmpty { throw fail("the host is missing") }
        if host.hasSuffix(".") && host.count > 1 { host.removeLast() }
        guard VerifyEndpoint.isIPv6(host) || VerifyEndpoint.isHostName(host) else {
            throw fail("\"\(host)\" is not a valid host name")
        }

        let port: UInt16
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt16(portText), value > 0
            else { throw fail("\"\(portText)\" is not a port number (1-65535)") }
            port = value
        } else if let value = scheme.defaultPort {
            port = value
        } else {
            throw fail("the tls scheme has no default port: write tls://host:port")
        }
        self.url = url
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = port
    }

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

    /// Letters, digits, '-', '_' in dot-separated labels of 1-63 bytes (253 in all).
    static func isHostName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
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

/// Where to dial: an override such as `127.0.0.1`, `10.0.0.5:2525`, `[::1]:25` or `::1`.
struct DialTarget: Sendable, Equatable {
    var host: String
    var port: UInt16

    /// Parses `connect`; a missing port falls back to `defaultPort`. Nil when malformed.
    init?(connect text: String, defaultPort: UInt16) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if after.isEmpty {
                port = defaultPort
            } else {
                guard after.hasPrefix(":"), let value = UInt16(after.dropFirst()), value > 0 else { return nil }
                port = value
            }
            guard VerifyEndpoint.isIPv6(host) else { return nil }
        } else if VerifyEndpoint.isIPv6(text) {
            host = text
            port = defaultPort
        } else if let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = UInt16(text[text.index(after: colon)...]), value > 0 else { return nil }
            port = value
        } else {
            host = text
            port = defaultPort
        }
        guard VerifyEndpoint.isHostName(host) || VerifyEndpoint.isIPAddress(host) else { return nil }
    }

    init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    var authority: String { VerifyEndpoint.authority(host: host, port: port) }
}
