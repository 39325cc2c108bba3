#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A mistake in the configuration file: where it is (file, line, dotted key), what is wrong, how to fix it.
///
/// Renders as `certreload.toml:12: target.mail.reload: two reload kinds …`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable codes: tests and scripts rely on them; add, never rename.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// Not valid TOML (the column is set).
        case syntax
        /// The file itself cannot be read (missing, a FIFO, too large, permission).
        case unreadable
        case unknownKey = "unknown-key"
        case wrongType = "wrong-type"
        case missingKey = "missing-key"
        /// Keys that exclude each other, such as two reload kinds or `lineages` with `cert`.
        case conflictingKeys = "conflicting-keys"
        /// The right type but a value certreload cannot use (bad enum value, relative path, bad URL).
        case badValue = "bad-value"
        case tokenFileInsecure = "token-file-insecure"
    }

    public var code: Code
    /// The line is 0 when the problem is the file as a whole; the key is empty when it names none.
    public var location: ConfigLocation
    /// Set for syntax errors.
    public var column: Int?
    public var message: String
    /// A change or command a person can paste; nil when there is nothing to paste.
    public var fix: String?

    public init(_ code: Code, _ location: ConfigLocation, _ message: String, column: Int? = nil, fix: String? = nil) {
        self.code = code
        self.location = location
        self.location.key = ConfigError.clipped(location.key)
        self.column = column
        self.message = ConfigError.clipped(message)
        self.fix = fix.map { ConfigError.clipped($0) }
    }

    /// A value quoted from the file can be 300 KB long (a hostname of a million letters): kept
    /// to its first and last characters, so the error stays something a person reads.
    static func clipped(_ text: String, limit: Int = 1024) -> String {
        guard text.utf8.count > limit else { return text }
        let head = text.prefix(limit * 3 / 4), tail = text.suffix(limit / 8)
        let left = text.count - head.count - tail.count
        return "\(head)… (\(left) characters left out) …\(tail)"
    }

    public var description: String {
        var place = location.file
        if location.line > 0 { place += ":\(location.line)" }
        if let column { place += ":\(column)" }
        // A value quoted from the file may hold control characters: shown escaped, so the
        // error stays one line and cannot forge another log line.
        let shown = ConfigError.escapingControls(message)
        if location.key.isEmpty { return "\(place): \(shown)" }
        return "\(place): \(ConfigError.escapingControls(location.key)): \(shown)"
    }

    static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Timing of the watch mode (`settle`, `settle-max`, `recheck` at top level, in seconds).
/// Nil where the file does not set it; the watch mode chooses the default.
public struct WatchSettings: Sendable, Equatable {
    /// Quiet time after the last change under certbot's directory before acting.
    public var settle: Double?
    /// Act at the latest this long after the first change, even if changes keep coming.
    public var settleMax: Double?
    /// Check every lineage this often even without a change.
    public var recheck: Double?
    /// How often lineages inotify cannot watch (its limits reached) are polled instead.
    public var pollInterval: Double?

    public init(settle: Double? = nil, settleMax: Double? = nil, recheck: Double? = nil, pollInterval: Double? = nil) {
        self.settle = settle
        self.settleMax = settleMax
        self.recheck = recheck
        self.pollInterval = pollInterval
    }
}

/// The outcome of reading a configuration file: everything found wrong, not just the first problem.
public struct ConfigValidation: Sendable {
    /// Nil when there are errors.
    public var configuration: Configuration?
    public var watch: WatchSettings
    /// In the order of the file (by line).
    public var errors: [ConfigError]
}

/// Reads `/etc/certreload/certreload.toml` into a `Configuration`, checking every key and value.
///
/// Acts on nothing: it does not resolve lineages, look up users or contact servers. It only looks
/// at secret files to refuse those other users can read; a missing secret file is fine here.
public enum ConfigurationLoader {
    public static let defaultPath = "/etc/certreload/certreload.toml"
    /// A configuration file is a few KiB; one target naming 10,000 lineages is about 300 KB.
    /// 4 MiB leaves room for a hosting box's 100,000 and still refuses a log file or an image.
    public static let sizeLimit = 4 << 20

    /// `--config FILE`, else `$CERTRELOAD_CONFIG`, else the default path.
    public static func path(option: String?) -> String {
        if let option { return option }
        if let env = getenv("CERTRELOAD_CONFIG"), env.pointee != 0 { return String(cString: env) }
        return defaultPath
    }

    /// Loads and validates the file; throws the first problem (by line).
    public static func load(path: String) throws(ConfigError) -> Configuration {
        let result = validate(path: path)
        if let first = result.errors.first { throw first }
        return result.configuration!
    }

    /// Loads and validates the file, collecting every problem.
    public static func validate(path: String) -> ConfigValidation {
        let location = ConfigLocation(file: path, line: 0, key: "")
        switch SafeFile.read(path, limit: sizeLimit) {
        case .success(let bytes):
            return validate(bytes, path: path)
        case .failure(let failure):
            let error: ConfigError
            switch failure {
            case .missing:
                error = ConfigError(
                    .unreadable, location, "configuration file does not exist",
                    fix: "cp /etc/certreload/certreload.toml.example \(path) (installed by Packaging/install.sh) and edit it, or pass --config FILE")
            case .notRegularFile(let kind):
                error = ConfigError(.unreadable, location, "configuration file is a \(kind), not a regular file")
            case .tooLarge(let size, let limit):
                error = ConfigError(.unreadable, location, "configuration file is \(size) bytes; certreload reads at most \(limit)")
            case .failed(let call, let code):
                error = ConfigError(
                    .unreadable, location, "\(call): \(errnoDescription(code))",
                    fix: code == EACCES ? "run as root, or make \(path) readable by this user" : nil)
            }
            return ConfigValidation(configuration: nil, watch: WatchSettings(), errors: [error])
        }
    }

    /// Validates a document already in memory; `path` names it in errors.
    public static func validate(_ bytes: [UInt8], path: String) -> ConfigValidation {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(bytes, file: path)
        } catch {
            return ConfigValidation(
                configuration: nil, watch: WatchSettings(),
                errors: [ConfigError(.syntax, ConfigLocation(file: path, line: error.line, key: ""), error.message, column: error.column)])
        }
        var decoder = ConfigurationDecoder(file: path)
        let (configuration, watch) = decoder.decode(root)
        let errors = decoder.errors.sorted { $0.location.line < $1.location.line }
        return ConfigValidation(configuration: errors.isEmpty ? configuration : nil, watch: watch, errors: errors)
    }

    public static func validate(_ text: String, path: String) -> ConfigValidation {
        validate(Array(text.utf8), path: path)
    }
}

// MARK: - Decoding

/// One table of the document being read, with its dotted key, so every error names its place.
struct ConfigSection {
    let table: TOMLTable
    let key: String
    let file: String

    /// The location of `key` in this table, or of the table itself when the key is absent.
    func location(_ name: String? = nil) -> ConfigLocation {
        guard let name else { return ConfigLocation(file: file, line: table.line, key: key) }
        let line = table.entry(name)?.line ?? table.line
        return ConfigLocation(file: file, line: line, key: child(name))
    }

    func child(_ name: String) -> String { key.isEmpty ? quoteKey(name) : key + "." + quoteKey(name) }

    func has(_ name: String) -> Bool { table[name] != nil }

    /// Refuses keys not in `allowed`, naming the nearest valid key.
    func checkKeys(_ allowed: [String], elsewhere: [String: String] = [:], what: String) throws(ConfigError) {
        for entry in table.entries where !allowed.contains(entry.key) {
            let location = ConfigLocation(file: file, line: entry.line, key: child(entry.key))
            if let owner = elsewhere[entry.key] {
                throw ConfigError(
                    .unknownKey, location, "'\(entry.key)' does not apply to \(what); it belongs to \(owner)",
                    fix: "remove '\(entry.key)'")
            }
            let fix: String
            if let nearest = nearestKey(entry.key, in: allowed) {
                fix = "did you mean '\(nearest)'? valid keys in \(what): \(allowed.joined(separator: ", "))"
            } else {
                fix = "valid keys in \(what): \(allowed.joined(separator: ", "))"
            }
            throw ConfigError(.unknownKey, location, "unknown key '\(entry.key)' in \(what)", fix: fix)
        }
    }

    func wrongType(_ name: String, _ value: TOMLValue, _ expected: String, example: String? = nil) -> ConfigError {
        ConfigError(
            .wrongType, ConfigLocation(file: file, line: value.line, key: child(name)),
            "expected \(expected), found \(article(value.typeName))",
            fix: example.map { "write it as \(name) = \($0)" })
    }

    func bad(_ name: String, _ message: String, line: Int? = nil, fix: String? = nil) -> ConfigError {
        ConfigError(.badValue, ConfigLocation(file: file, line: line ?? location(name).line, key: child(name)), message, fix: fix)
    }

    /// A required key that is absent: named by its would-be dotted key, at the table's line.
    func missing(_ name: String, _ message: String, fix: String? = nil) -> ConfigError {
        ConfigError(.missingKey, ConfigLocation(file: file, line: table.line, key: child(name)), message, fix: fix)
    }

    func string(_ name: String, example: String = "\"…\"") throws(ConfigError) -> String? {
        guard let value = table[name] else { return nil }
        guard let text = value.string else { throw wrongType(name, value, "a string", example: example) }
        guard !text.isEmpty else { throw bad(name, "must not be empty") }
        return text
    }

    func requiredString(_ name: String, what: String, example: String) throws(ConfigError) -> String {
        guard let text = try string(name, example: example) else {
            throw missing(name, "\(what) needs '\(name)'", fix: "add \(name) = \(example)")
        }
        return text
    }

    func absolutePath(_ name: String, example: String) throws(ConfigError) -> String? {
        guard let path = try string(name, example: example) else { return nil }
        guard path.hasPrefix("/") else {
            throw bad(name, "'\(path)' is not an absolute path", fix: "write the full path, for example \(name) = \(example)")
        }
        return path
    }

    func boolean(_ name: String) throws(ConfigError) -> Bool? {
        guard let value = table[name] else { return nil }
        guard let flag = value.boolean else { throw wrongType(name, value, "true or false", example: "true") }
        return flag
    }

    func integer(_ name: String, minimum: Int, example: String) throws(ConfigError) -> Int? {
        guard let value = table[name] else { return nil }
        guard let number = value.integer else { throw wrongType(name, value, "an integer", example: example) }
        guard number >= minimum else { throw bad(name, "must be \(minimum) or more, not \(number)", fix: "\(name) = \(example)") }
        return number
    }

    /// Seconds: an integer or a float, more than zero.
    func seconds(_ name: String, example: String) throws(ConfigError) -> Double? {
        guard let value = table[name] else { return nil }
        guard let number = value.number else { throw wrongType(name, value, "a number of seconds", example: example) }
        guard number > 0, number.isFinite, number <= 31 * 24 * 3600 else {
            throw bad(name, "must be a number of seconds above 0 (and at most 31 days)", fix: "\(name) = \(example)")
        }
        return number
    }

    /// An array of non-empty strings, with each element's line (multi-line arrays).
    func strings(_ name: String, example: String) throws(ConfigError) -> [(text: String, line: Int)]? {
        guard let value = table[name] else { return nil }
        guard let elements = value.array else { throw wrongType(name, value, "an array of strings", example: example) }
        var result: [(text: String, line: Int)] = []
        for (index, element) in elements.enumerated() {
            guard let text = element.string else {
                throw ConfigError(
                    .wrongType, ConfigLocation(file: file, line: element.line, key: child(name)),
                    "element \(index + 1) should be a string, found \(article(element.typeName))",
                    fix: "write it as \(name) = \(example)")
            }
            guard !text.isEmpty else { throw bad(name, "element \(index + 1) is an empty string", line: element.line) }
            result.append((text, element.line))
        }
        return result
    }

    func section(_ name: String, example: String) throws(ConfigError) -> ConfigSection? {
        guard let value = table[name] else { return nil }
        guard let child = value.table else { throw wrongType(name, value, "a table", example: example) }
        return ConfigSection(table: child, key: self.child(name), file: file)
    }
}

struct ConfigurationDecoder {
    let file: String
    var errors: [ConfigError] = []

    static let topLevelKeys = ["certbot-dir", "warn-days", "state-dir", "settle", "settle-max", "recheck", "poll-interval", "target"]
    static let targetKeys = [
        "lineages", "cert", "key", "chain", "user", "hostnames", "reload", "verify", "connect", "ca-file",
        "insecure", "verify-timeout", "probe-without-sni", "warn-days",
    ]

    init(file: String) {
        self.file = file
    }

    mutating func decode(_ root: TOMLTable) -> (Configuration, WatchSettings) {
        var configuration = Configuration(path: file)
        var watch = WatchSettings()
        var errors: [ConfigError] = []
        defer { self.errors = errors }
        func record(_ body: () throws(ConfigError) -> Void) {
            do throws(ConfigError) {
                try body()
            } catch {
                errors.append(error)
            }
        }
        let top = ConfigSection(table: root, key: "", file: file)
        let file = self.file
        do throws(ConfigError) {
            try top.checkKeys(Self.topLevelKeys, what: "the top level")
        } catch {
            errors.append(error)
        }
        record { () throws(ConfigError) in
            if let directory = try top.absolutePath("certbot-dir", example: "\"/etc/letsencrypt\"") {
                configuration.certbotDirectory = directory
            }
        }
        record { () throws(ConfigError) in
            if let days = try top.integer("warn-days", minimum: 0, example: "14") { configuration.warnDays = days }
        }
        record { () throws(ConfigError) in
            if let directory = try top.absolutePath("state-dir", example: "\"/var/lib/certreload\"") {
                configuration.stateDirectory = directory
            }
        }
        record { () throws(ConfigError) in
            watch.settle = try top.seconds("settle", example: "30")
            watch.settleMax = try top.seconds("settle-max", example: "600")
            watch.recheck = try top.seconds("recheck", example: "43200")
            watch.pollInterval = try top.seconds("poll-interval", example: "30")
            if let settle = watch.settle, let settleMax = watch.settleMax, settleMax < settle {
                throw top.bad(
                    "settle-max", "settle-max (\(format(settleMax)) s) is shorter than settle (\(format(settle)) s)",
                    fix: "make settle-max at least \(format(settle))")
            }
        }
        let targets: ConfigSection?
        do throws(ConfigError) {
            targets = try top.section("target", example: "{ … } or a [target.NAME] table")
        } catch {
            errors.append(error)
            targets = nil
        }
        for entry in targets?.table.entries ?? [] {
            record { () throws(ConfigError) in
                guard let table = entry.value.table else {
                    throw ConfigError(
                        .wrongType, ConfigLocation(file: file, line: entry.line, key: targets!.child(entry.key)),
                        "expected a [\(targets!.child(entry.key))] table, found \(article(entry.value.typeName))",
                        fix: "targets are tables: [target.NAME] followed by its keys")
                }
                let section = ConfigSection(table: table, key: targets!.child(entry.key), file: file)
                configuration.targets.append(try decodeTarget(name: entry.key, section))
            }
        }
        configuration.watch = watch
        return (configuration, watch)
    }


    func decodeTarget(name: String, _ section: ConfigSection) throws(ConfigError) -> TargetConfiguration {
        try section.checkKeys(Self.targetKeys, what: "a target")
        let what = "target '\(name)'"

        // The files: lineages, or cert/key(/chain).
        let lineages = try section.strings("lineages", example: "[\"example.com\"]")
        let cert = try section.absolutePath("cert", example: "\"/etc/ssl/example.com/fullchain.pem\"")
        let key = try section.absolutePath("key", example: "\"/etc/ssl/example.com/privkey.pem\"")
        let chain = try section.absolutePath("chain", example: "\"/etc/ssl/example.com/chain.pem\"")
        if lineages != nil, cert != nil || key != nil || chain != nil {
            let other = cert != nil ? "cert" : key != nil ? "key" : "chain"
            throw ConfigError(
                .conflictingKeys, section.location(other),
                "give either lineages or cert/key paths, not both",
                fix: "remove '\(other)' (certreload finds the files of a lineage under certbot's live/ directory)")
        }
        if let lineages {
            guard !lineages.isEmpty else {
                throw section.bad("lineages", "lists no lineage", fix: "lineages = [\"example.com\"]")
            }
            for lineage in lineages
            where lineage.text.contains("/") || lineage.text == "." || lineage.text == ".."
                || lineage.text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
                throw section.bad(
                    "lineages", "'\(lineage.text)' is not a lineage name (the name of a directory under live/)",
                    line: lineage.line, fix: "write the name only, as `certbot certificates` shows it, for example \"example.com\"")
            }
        } else if cert == nil && key == nil {
            throw section.missing(
                "lineages", "\(what) names no certificate: it needs lineages, or cert and key",
                fix: "add lineages = [\"example.com\"] (a certbot lineage name)")
        } else if cert == nil {
            throw section.missing("cert", "\(what) has key but no cert", fix: "add cert = \"/path/to/fullchain.pem\"")
        } else if key == nil {
            throw section.missing("key", "\(what) has cert but no key", fix: "add key = \"/path/to/privkey.pem\"")
        }

        guard let reloadValue = section.table["reload"] else {
            throw section.missing(
                "reload", "\(what) does not say how to reload the server",
                fix: "add reload = { systemd = \"NAME.service\" } or another reload kind (stalwart, caddy, http, systemd, signal, command)")
        }
        guard let reloadTable = reloadValue.table else {
            throw section.wrongType("reload", reloadValue, "a table", example: "{ systemd = \"NAME.service\" }")
        }
        let reload = try decodeReload(ConfigSection(table: reloadTable, key: section.child("reload"), file: file))

        var target = TargetConfiguration(name: name, location: section.location(), reload: reload)
        target.lineages = lineages?.map(\.text) ?? []
        target.certFile = cert
        target.keyFile = key
        target.chainFile = chain
        if let user = try section.string("user", example: "\"stalwart\"") {
            guard !user.contains(where: { $0 == " " || $0 == "\t" || $0 == ":" || $0 == "/" }) else {
                throw section.bad("user", "'\(user)' is not an account name", fix: "user = \"stalwart\"")
            }
            target.user = user
        }
        for host in try section.strings("hostnames", example: "[\"mail.example.com\"]") ?? [] {
            guard Self.isHostname(host.text, wildcard: true) else {
                throw section.bad(
                    "hostnames", "'\(host.text)' is not a host name", line: host.line,
                    fix: "write the name only, without scheme or port, for example \"mail.example.com\"")
            }
            target.hostnames.append(host.text)
        }
        for url in try section.strings("verify", example: "[\"https://mail.example.com:443\"]") ?? [] {
            do throws(VerifyEndpoint.ParseError) {
                target.verify.append(try VerifyEndpoint(parsing: url.text))
            } catch {
                var shown = url.text
                if let start = shown.firstRange(of: "://"), let at = shown.lastIndex(of: "@"), start.upperBound < at {
                    shown.replaceSubrange(start.upperBound..<at, with: "…")
                }
                throw section.bad("verify", "'\(shown)': \(error.message)", line: url.line, fix: error.fix)
            }
        }
        if let connect = try section.string("connect", example: "\"127.0.0.1\"") {
            // The grammar the probe dials with (the port is always the verify URL's).
            guard DialTarget(connect: connect, defaultPort: 1) != nil else {
                throw section.bad(
                    "connect", "'\(connect)' is not an address or host name",
                    fix: "write the address only, without scheme or port, for example connect = \"127.0.0.1\"; the port is the verify URL's")
            }
            target.connect = connect
        }
        target.caFile = try section.absolutePath("ca-file", example: "\"/etc/ssl/private-ca.pem\"")
        if let flag = try section.boolean("insecure"), flag {
            guard let url = reload.httpURL, url.lowercased().hasPrefix("https://") else {
                throw section.bad(
                    "insecure",
                    "insecure = true turns off TLS verification of an https:// reload endpoint, and this target's reload has none"
                        + (reload.httpURL.map { " (\(HTTPEndpoint.redact($0)) is plain HTTP)" } ?? ""),
                    fix: "remove insecure from target.\(name)")
            }
            guard target.caFile == nil else {
                throw ConfigError(
                    .conflictingKeys, section.location("insecure"), "insecure = true and ca-file contradict each other: ca-file says whom to trust",
                    fix: "keep ca-file (the CA that signed the endpoint's certificate) and remove insecure")
            }
            target.insecure = true
        }
        if let timeout = try section.seconds("verify-timeout", example: "10") { target.verifyTimeout = timeout }
        if let flag = try section.boolean("probe-without-sni") { target.probeWithoutSNI = flag }
        target.warnDays = try section.integer("warn-days", minimum: 0, example: "14")
        return target
    }

    // MARK: Reload

    static let reloadKinds: [(kind: String, keys: [String])] = [
        ("stalwart", ["stalwart", "api", "token-file", "token-credential", "username", "password-file", "password-credential"]),
        ("caddy", ["caddy"]),
        ("http", ["http", "method", "headers", "body", "token-file", "token-credential", "expect-status"]),
        ("systemd", ["systemd", "mode"]),
        ("signal", ["signal", "pidfile", "unit"]),
        ("command", ["command", "timeout"]),
    ]

    func decodeReload(_ section: ConfigSection) throws(ConfigError) -> ReloadConfiguration {
        let kinds = Self.reloadKinds.map(\.kind)
        let present = section.table.entries.filter { kinds.contains($0.key) }
        guard let first = present.first else {
            let allKeys = Self.reloadKinds.flatMap(\.keys)
            for entry in section.table.entries where !allKeys.contains(entry.key) {
                let fix = nearestKey(entry.key, in: allKeys).map { "did you mean '\($0)'?" }
                throw ConfigError(.unknownKey, section.location(entry.key), "unknown key '\(entry.key)' in a reload table", fix: fix)
            }
            throw ConfigError(
                .missingKey, section.location(), "names no reload kind; it needs exactly one of \(kinds.joined(separator: ", "))",
                fix: "for example reload = { systemd = \"NAME.service\" }")
        }
        if present.count > 1 {
            let second = present[1]
            throw ConfigError(
                .conflictingKeys, section.location(second.key),
                "two reload kinds in one target: '\(first.key)' (line \(first.line)) and '\(second.key)'",
                fix: "keep one; to reload two servers, make two targets")
        }
        let kind = first.key
        let allowed = Self.reloadKinds.first { $0.kind == kind }!.keys
        var owners: [String: String] = [:]
        for other in Self.reloadKinds where other.kind != kind {
            for key in other.keys where !allowed.contains(key) {
                owners[key] = owners[key].map { "\($0), \(other.kind)" } ?? "a \(other.kind) reload"
            }
        }
        try section.checkKeys(allowed, elsewhere: owners, what: "a \(kind) reload")

        switch kind {
        case "stalwart":
            let url = try httpURL(section, "stalwart", example: "\"http://127.0.0.1:8080\"")
            let api: ReloadConfiguration.StalwartAPI
            if let text = try section.string("api", example: "\"auto\"") {
                guard let value = ReloadConfiguration.StalwartAPI(rawValue: text) else {
                    throw badEnum(section, "api", text, ["auto", "jmap", "rest"])
                }
                api = value
            } else {
                api = .auto
            }
            let token = try secret(section, "token")
            let username = try section.string("username", example: "\"admin\"")
            let password = try secret(section, "password")
            if token != nil, username != nil || password != nil {
                throw ConfigError(
                    .conflictingKeys, section.location(username != nil ? "username" : password != nil ? "password-file" : "token-file"),
                    "give a token or a username and password, not both", fix: "keep token-file (an API key) and remove username/password")
            }
            if username != nil, password == nil {
                throw section.missing("password-file", "username needs a password-file or password-credential", fix: "add password-file = \"/etc/certreload/stalwart.password\"")
            }
            if password != nil, username == nil {
                throw section.missing("username", "a password needs a username", fix: "add username = \"admin\"")
            }
            if token == nil, username == nil {
                throw section.missing(
                    "token-file", "Stalwart's API needs credentials: token-file or token-credential (or username and password-file)",
                    fix: "add token-file = \"/etc/certreload/stalwart.token\" (an API key with permission to reload)")
            }
            return .stalwart(url: url, api: api, token: token, username: username, password: password)
        case "caddy":
            guard let value = section.table["caddy"], let url = value.string else {
                throw section.wrongType("caddy", section.table["caddy"]!, "a URL string", example: "\"http://127.0.0.1:2019\"")
            }
            if url.hasPrefix("unix:") {
                guard url.dropFirst(5).hasPrefix("/") else {
                    throw section.bad("caddy", "'\(url)': the socket path must be absolute", fix: "caddy = \"unix:/run/caddy/admin.sock\"")
                }
                return .caddy(url: url)
            }
            return .caddy(url: try httpURL(section, "caddy", example: "\"http://127.0.0.1:2019\""))
        case "http":
            let url = try httpURL(section, "http", example: "\"https://app.example.com/reload\"")
            var method = "POST"
            if let text = try section.string("method", example: "\"POST\"") {
                guard text.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else {
                    throw section.bad("method", "'\(text)' is not an HTTP method", fix: "method = \"\(text.uppercased())\"")
                }
                method = text
            }
            var headers: [String: String] = [:]
            if let table = try section.section("headers", example: "{ \"X-Reload\" = \"1\" }") {
                for entry in table.table.entries {
                    guard let value = entry.value.string else {
                        throw table.wrongType(entry.key, entry.value, "a string", example: "\"…\"")
                    }
                    guard !entry.key.isEmpty, entry.key.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                        throw table.bad(entry.key, "'\(entry.key)' is not an HTTP header name")
                    }
                    guard !value.utf8.contains(where: { $0 == 10 || $0 == 13 }) else {
                        throw table.bad(entry.key, "a header value cannot contain a line break")
                    }
                    headers[entry.key] = value
                }
            }
            var body: String?
            if let value = section.table["body"] {
                guard let text = value.string else { throw section.wrongType("body", value, "a string", example: "'{\"reload\": true}'") }
                body = text
            }
            let token = try secret(section, "token")
            var expectStatus: [Int] = []
            if let value = section.table["expect-status"] {
                let elements = value.array ?? [value]
                for element in elements {
                    guard let status = element.integer else {
                        throw section.wrongType("expect-status", element, "an integer or an array of integers", example: "[200, 204]")
                    }
                    guard (100...599).contains(status) else {
                        throw section.bad("expect-status", "\(status) is not an HTTP status", line: element.line, fix: "expect-status = [200, 204]")
                    }
                    expectStatus.append(status)
                }
                if elements.isEmpty { throw section.bad("expect-status", "lists no status; leave it out to accept any 2xx") }
            }
            return .http(url: url, method: method, headers: headers, body: body, token: token, expectStatus: expectStatus)
        case "systemd":
            let unit = try unitName(section, "systemd")
            var mode = ReloadConfiguration.SystemdMode.reload
            if let text = try section.string("mode", example: "\"reload\"") {
                guard let value = ReloadConfiguration.SystemdMode(rawValue: text) else {
                    throw badEnum(section, "mode", text, ["reload", "restart", "reload-or-restart"])
                }
                mode = value
            }
            return .systemd(unit: unit, mode: mode)
        case "signal":
            let text = try section.requiredString("signal", what: "a signal reload", example: "\"HUP\"")
            var name = text.uppercased()
            if name.hasPrefix("SIG") { name.removeFirst(3) }
            let known = ["HUP", "USR1", "USR2", "TERM", "INT", "QUIT", "WINCH", "CONT", "ALRM"]
            guard known.contains(name) else {
                let nearest = nearestKey(name, in: known).map { "did you mean \"\($0)\"? " } ?? ""
                throw section.bad("signal", "'\(text)' is not a signal certreload sends", fix: "\(nearest)known: \(known.joined(separator: ", "))")
            }
            let pidFile = try section.absolutePath("pidfile", example: "\"/run/nginx.pid\"")
            let unit = section.has("unit") ? try unitName(section, "unit") : nil
            if pidFile != nil && unit != nil {
                throw ConfigError(
                    .conflictingKeys, section.location("unit"), "give pidfile or unit, not both",
                    fix: "keep unit (systemd knows the main process) or pidfile")
            }
            if pidFile == nil && unit == nil {
                throw section.missing(
                    "pidfile", "a signal reload needs pidfile or unit to find the process",
                    fix: "add pidfile = \"/run/nginx.pid\" or unit = \"nginx.service\"")
            }
            return .signal(name: "SIG" + name, pidFile: pidFile, unit: unit)
        default:  // command
            let argvValue = section.table["command"]!
            guard let elements = try section.strings("command", example: "[\"/usr/sbin/postfix\", \"reload\"]") else {
                throw section.wrongType("command", argvValue, "an array of strings", example: "[\"/usr/sbin/postfix\", \"reload\"]")
            }
            guard let program = elements.first else {
                throw section.bad("command", "is empty; it needs at least the program", fix: "command = [\"/usr/sbin/postfix\", \"reload\"]")
            }
            guard program.text.hasPrefix("/") else {
                let words = elements.map { "\"\($0.text)\"" }.dropFirst().joined(separator: ", ")
                throw section.bad(
                    "command", "the program '\(program.text)' is not an absolute path (certreload runs it without a shell or $PATH)",
                    line: program.line, fix: "command = [\"/usr/sbin/\(program.text)\"\(words.isEmpty ? "" : ", " + words)] (see `command -v \(program.text)`)")
            }
            let timeout = try section.seconds("timeout", example: "60") ?? 60
            return .command(argv: elements.map(\.text), timeout: timeout)
        }
    }

    private func badEnum(_ section: ConfigSection, _ name: String, _ text: String, _ values: [String]) -> ConfigError {
        return section.bad(
            name, "'\(text)' is not one of \(values.map { "\"\($0)\"" }.joined(separator: ", "))",
            fix: "\(name) = \"\(nearestKey(text, in: values) ?? values[0])\"")
    }

    /// An http:// or https:// URL with a host.
    private func httpURL(_ section: ConfigSection, _ name: String, example: String) throws(ConfigError) -> String {
        guard let value = section.table[name] else { throw section.missing(name, "needs '\(name)'", fix: "\(name) = \(example)") }
        guard let url = value.string else { throw section.wrongType(name, value, "a URL string", example: example) }
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = url.dropFirst(8)
        } else {
            throw section.bad(name, "'\(url)' is not an http:// or https:// URL", fix: "\(name) = \(example)")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.hasPrefix(":"), !authority.contains(" ") else {
            throw section.bad(name, "'\(url)' has no host", fix: "\(name) = \(example)")
        }
        return url
    }

    private func unitName(_ section: ConfigSection, _ name: String) throws(ConfigError) -> String {
        let unit = try section.requiredString(name, what: "this reload", example: "\"dovecot.service\"")
        guard !unit.contains(where: { $0 == " " || $0 == "/" || $0 == "\t" }) else {
            throw section.bad(name, "'\(unit)' is not a systemd unit name", fix: "\(name) = \"dovecot.service\"")
        }
        return unit
    }

    /// `<prefix>-file` or `<prefix>-credential` (at most one); an existing file must not be world-readable.
    private func secret(_ section: ConfigSection, _ prefix: String) throws(ConfigError) -> SecretSource? {
        let fileKey = prefix + "-file", credentialKey = prefix + "-credential"
        let path = try section.absolutePath(fileKey, example: "\"/etc/certreload/\(prefix)\"")
        let credential = try section.string(credentialKey, example: "\"\(prefix)\"")
        if path != nil && credential != nil {
            throw ConfigError(
                .conflictingKeys, section.location(credentialKey), "give \(fileKey) or \(credentialKey), not both",
                fix: "keep \(credentialKey) under systemd (LoadCredential=), \(fileKey) otherwise")
        }
        if let path {
            do throws(ReloadError) {
                try Secrets.checkPermissions(path)
            } catch {
                throw ConfigError(.tokenFileInsecure, section.location(fileKey), error.message, fix: error.fix)
            }
            return .file(path)
        }
        if let credential {
            guard !credential.contains("/"), credential != ".", credential != ".." else {
                throw section.bad(credentialKey, "'\(credential)' is not a credential name (a file name in $CREDENTIALS_DIRECTORY)",
                                  fix: "\(credentialKey) = \"\(prefix)\" with LoadCredential=\(prefix):/etc/certreload/\(prefix) in the unit")
            }
            return .credential(credential)
        }
        return nil
    }

    // MARK: Names

    static func isHostname(_ text: String, wildcard: Bool) -> Bool {
        ProbeAddress.isHostName(text, wildcard: wildcard)
    }

    static func isIPv6(_ text: String) -> Bool { ProbeAddress.isIPv6(text) }
}

/// A verify URL taken apart: `smtp://mail.example.com:25` → smtp, mail.example.com, 25.
public struct VerifyEndpoint: Sendable, Equatable {
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
        public var fix: String?
    }

    /// The schemes certreload probes, with their usual ports (`tls` has none: it needs one).
    public static let defaultPorts: [String: Int?] = [
        "smtp": 25, "submission": 587, "smtps": 465, "submissions": 465, "imap": 143, "imaps": 993,
        "pop3": 110, "pop3s": 995, "https": 443, "tls": nil,
    ]
    public static let schemes = ["smtp", "submission", "smtps", "submissions", "imap", "imaps", "pop3", "pop3s", "https", "tls"]

    public var scheme: String
    /// Without brackets for IPv6.
    public var host: String
    public var port: Int

    public init(parsing url: String) throws(ParseError) {
        guard let separator = url.firstRange(of: "://") else {
            throw ParseError(message: "not a URL (expected scheme://host:port)", fix: "for example \"smtp://mail.example.com:25\"")
        }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard let entry = Self.defaultPorts[scheme] else {
            let nearest = nearestKey(scheme, in: Self.schemes).map { "did you mean \($0)://? " } ?? ""
            throw ParseError(
                message: "unknown scheme '\(scheme)'",
                fix: "\(nearest)known schemes: \(Self.schemes.joined(separator: ", "))")
        }
        var rest = url[separator.upperBound...]
        if let at = rest.firstIndex(of: "@") {
            // Never echo what came before '@': it may be a password.
            throw ParseError(
                message: "a verify URL takes no user name or password",
                fix: "write \(scheme)://\(rest[rest.index(after: at)...]); certreload sends no credentials when it probes")
        }
        if let slash = rest.firstIndex(of: "/") {
            guard scheme == "https" || rest[slash...] == "/" else {
                throw ParseError(message: "a \(scheme) URL has no path", fix: "write \(scheme)://\(rest[..<slash])")
            }
            rest = rest[..<slash]
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(message: "'[' of an IPv6 address is not closed", fix: nil) }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError(message: "expected ':port' after the IPv6 address", fix: nil) }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw ParseError(message: "has no host", fix: "for example \"\(scheme)://mail.example.com\"") }
        guard ConfigurationDecoder.isHostname(String(host), wildcard: false) || ConfigurationDecoder.isIPv6(String(host)) else {
            throw ParseError(message: "'\(host)' is not a host name or address", fix: nil)
        }
        let port: Int
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw ParseError(message: "'\(portText)' is not a port (1-65535)", fix: nil)
            }
            port = number
        } else if let standard = entry {
            port = standard
        } else {
            throw ParseError(message: "a tls:// URL needs a port (there is no usual one)", fix: "for example \"tls://\(host):8443\"")
        }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
    }
}

// MARK: - Helpers

/// A key as TOML would write it: bare when it can be, quoted otherwise.
func quoteKey(_ key: String) -> String {
    let bare = !key.isEmpty && key.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
    if bare { return key }
    var quoted = "\""
    for character in key {
        switch character {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        default: quoted.append(character)
        }
    }
    return quoted + "\""
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
func nearestKey(_ word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate)
        if best == nil || distance < best!.1 { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    // Accept roughly one edit in three characters, or one word containing the other.
    let limit = max(2, min(word.count, candidate.count) / 3)
    if distance <= limit || candidate.contains(word.lowercased()) || (word.count >= 3 && word.lowercased().contains(candidate)) {
        return candidate
    }
    return nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            // A swap of two neighbours counts as one edit (lineage ↔ lienage).
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

private func article(_ typeName: String) -> String {
    typeName == "integer" || typeName == "array" ? "an \(typeName)" : "a \(typeName)"
}

private func format(_ seconds: Double) -> String {
    seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
}
