import Testing

@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A target around a reload table, so each case only spells what it is about.
private func document(reload: String) -> String {
    """
    [target.mail]
    lineages = ["example.com"]
    reload = \(reload)
    """
}

private func load(_ text: String) throws(ConfigError) -> Configuration {
    let result = ConfigurationLoader.validate(text, path: "certreload.toml")
    if let first = result.errors.first { throw first }
    return result.configuration!
}

/// A fresh directory under /tmp, removed by the caller.
private func temporaryDirectory() throws -> String {
    var template = Array("/tmp/certreload-config-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    try #require(made != nil)
    return String(cString: template)
}

private func write(_ text: String, to path: String, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    try #require(fd >= 0)
    defer { close(fd) }
    let bytes = Array(text.utf8)
    #expect(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count)
    fchmod(fd, mode)
}

@Suite("Configuration loader")
struct ConfigurationLoaderTests {
    @Test("the contract's example loads with its defaults")
    func contractExample() throws {
        let configuration = try load(
            """
            certbot-dir = "/etc/letsencrypt"
            warn-days = 14
            state-dir = "/var/lib/certreload"

            [target.mail]
            lineages  = ["example.com"]          # certbot lineage names
            user      = "stalwart"
            hostnames = ["mail.example.com", "example.com"]
            reload    = { stalwart = "http://127.0.0.1:8080", token-file = "/nonexistent/stalwart.token" }
            verify    = ["smtp://mail.example.com:25", "smtps://mail.example.com:465",
                         "imaps://mail.example.com:993", "https://mail.example.com:443"]
            connect   = "127.0.0.1"
            """)
        #expect(configuration.path == "certreload.toml")
        #expect(configuration.certbotDirectory == "/etc/letsencrypt")
        #expect(configuration.warnDays == 14)
        let target = try #require(configuration.targets.first)
        #expect(target.name == "mail")
        #expect(target.location == ConfigLocation(file: "certreload.toml", line: 5, key: "target.mail"))
        #expect(target.lineages == ["example.com"])
        #expect(target.user == "stalwart")
        #expect(target.hostnames == ["mail.example.com", "example.com"])
        #expect(target.verify.count == 4)
        #expect(target.connect == "127.0.0.1")
        #expect(target.verifyTimeout == 10)
        #expect(target.probeWithoutSNI == false)
        #expect(target.warnDays == nil)
        #expect(
            target.reload
                == .stalwart(url: "http://127.0.0.1:8080", api: .auto, token: .file("/nonexistent/stalwart.token"), username: nil, password: nil))
    }

    @Test("top-level defaults when the file sets nothing")
    func defaults() throws {
        let configuration = try load("")
        #expect(configuration.certbotDirectory == "/etc/letsencrypt")
        #expect(configuration.stateDirectory == "/var/lib/certreload")
        #expect(configuration.warnDays == 14)
        #expect(configuration.targets.isEmpty)
    }

    struct ReloadCase: Sendable, CustomTestStringConvertible {
        var reload: String
        var expected: ReloadConfiguration
        var testDescription: String { reload }
    }

    // Computed, not a `static let`: LeakSanitizer took the non-empty `expectStatus` arrays held
    // by a global of this multi-payload enum for leaks (Swift keeps the case in the pointer's
    // spare bits, so the global's word does not look like a pointer to LSan).
    static var reloads: [ReloadCase] { [
        .init(
            reload: #"{ stalwart = "http://127.0.0.1:8080", api = "jmap", token-credential = "stalwart.token" }"#,
            expected: .stalwart(url: "http://127.0.0.1:8080", api: .jmap, token: .credential("stalwart.token"), username: nil, password: nil)),
        .init(
            reload: #"{ stalwart = "https://mail:443", api = "rest", username = "admin", password-file = "/nonexistent/pw" }"#,
            expected: .stalwart(url: "https://mail:443", api: .rest, token: nil, username: "admin", password: .file("/nonexistent/pw"))),
        .init(
            reload: #"{ stalwart = "http://s", username = "admin", password-credential = "pw" }"#,
            expected: .stalwart(url: "http://s", api: .auto, token: nil, username: "admin", password: .credential("pw"))),
        .init(reload: #"{ caddy = "http://127.0.0.1:2019" }"#, expected: .caddy(url: "http://127.0.0.1:2019")),
        .init(reload: #"{ caddy = "unix:/run/caddy/admin.sock" }"#, expected: .caddy(url: "unix:/run/caddy/admin.sock")),
        .init(
            reload: #"{ http = "https://app/reload" }"#,
            expected: .http(url: "https://app/reload", method: "POST", headers: [:], body: nil, token: nil, expectStatus: [])),
        .init(
            reload: #"{ http = "http://app/r", method = "PUT", headers = { X-A = "1", "X-B" = "2" }, body = "{}", token-file = "/nonexistent/t", expect-status = 204 }"#,
            expected: .http(url: "http://app/r", method: "PUT", headers: ["X-A": "1", "X-B": "2"], body: "{}", token: .file("/nonexistent/t"), expectStatus: [204])),
        .init(
            reload: #"{ http = "http://app/r", token-credential = "app", expect-status = [200, 202] }"#,
            expected: .http(url: "http://app/r", method: "POST", headers: [:], body: nil, token: .credential("app"), expectStatus: [200, 202])),
        .init(reload: #"{ systemd = "dovecot.service" }"#, expected: .systemd(unit: "dovecot.service", mode: .reload)),
        .init(reload: #"{ systemd = "dovecot", mode = "reload-or-restart" }"#, expected: .systemd(unit: "dovecot", mode: .reloadOrRestart)),
        .init(reload: #"{ systemd = "slapd.service", mode = "restart" }"#, expected: .systemd(unit: "slapd.service", mode: .restart)),
        .init(reload: #"{ signal = "HUP", pidfile = "/run/nginx.pid" }"#, expected: .signal(name: "SIGHUP", pidFile: "/run/nginx.pid", unit: nil)),
        .init(reload: #"{ signal = "sigusr1", unit = "nginx.service" }"#, expected: .signal(name: "SIGUSR1", pidFile: nil, unit: "nginx.service")),
        .init(reload: #"{ command = ["/usr/sbin/postfix", "reload"] }"#, expected: .command(argv: ["/usr/sbin/postfix", "reload"], timeout: 60)),
        .init(reload: #"{ command = ["/usr/bin/doveadm", "reload"], timeout = 2.5 }"#, expected: .command(argv: ["/usr/bin/doveadm", "reload"], timeout: 2.5)),
    ] }

    @Test("every reload kind", arguments: reloads)
    func reloadKinds(_ example: ReloadCase) throws {
        let configuration = try load(document(reload: example.reload))
        #expect(configuration.targets.first?.reload == example.expected)
    }

    @Test("reload as its own [target.NAME.reload] table")
    func reloadSubTable() throws {
        let configuration = try load(
            """
            [target.app]
            cert = "/etc/ssl/app/fullchain.pem"
            key = "/etc/ssl/app/privkey.pem"

            [target.app.reload]
            systemd = "app.service"
            mode = "restart"
            """)
        let target = try #require(configuration.targets.first)
        #expect(target.reload == .systemd(unit: "app.service", mode: .restart))
        #expect(target.certFile == "/etc/ssl/app/fullchain.pem")
        #expect(target.keyFile == "/etc/ssl/app/privkey.pem")
        #expect(target.chainFile == nil)
        #expect(target.lineages.isEmpty)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var document: String
        var line: Int
        var key: String
        var code: ConfigError.Code
        var message: String
        var fix: String? = nil
        var testDescription: String { "\(key): \(message)" }
    }

    static let invalid: [Invalid] = [
        // Unknown keys name the nearest valid one.
        .init(document: "warn-dayz = 3", line: 1, key: "warn-dayz", code: .unknownKey, message: "unknown key 'warn-dayz' in the top level", fix: "did you mean 'warn-days'?"),
        .init(
            document: "[target.mail]\nlinages = [\"a\"]\nreload = { systemd = \"x\" }", line: 2, key: "target.mail.linages",
            code: .unknownKey, message: "unknown key 'linages' in a target", fix: "did you mean 'lineages'?"),
        .init(
            document: document(reload: #"{ systemd = "x", mod = "restart" }"#), line: 3, key: "target.mail.reload.mod",
            code: .unknownKey, message: "unknown key 'mod'", fix: "did you mean 'mode'?"),
        .init(
            document: document(reload: #"{ caddy = "http://x", token-file = "/t" }"#), line: 3, key: "target.mail.reload.token-file",
            code: .unknownKey, message: "'token-file' does not apply to a caddy reload; it belongs to a stalwart reload, http"),
        .init(
            document: document(reload: #"{ stalwrt = "http://x" }"#), line: 3, key: "target.mail.reload.stalwrt",
            code: .unknownKey, message: "unknown key 'stalwrt' in a reload table", fix: "did you mean 'stalwart'?"),
        // Wrong types.
        .init(document: "warn-days = \"14\"", line: 1, key: "warn-days", code: .wrongType, message: "expected an integer, found a string", fix: "warn-days = 14"),
        .init(
            document: "[target.mail]\nlineages = \"example.com\"\nreload = { systemd = \"x\" }", line: 2, key: "target.mail.lineages",
            code: .wrongType, message: "expected an array of strings, found a string"),
        .init(
            document: "[target.mail]\nlineages = [\"a\",\n  7]\nreload = { systemd = \"x\" }", line: 3, key: "target.mail.lineages",
            code: .wrongType, message: "element 2 should be a string, found an integer"),
        .init(document: document(reload: "\"nginx\""), line: 3, key: "target.mail.reload", code: .wrongType, message: "expected a table, found a string"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nprobe-without-sni = \"yes\"", line: 4, key: "target.mail.probe-without-sni",
            code: .wrongType, message: "expected true or false"),
        .init(
            document: document(reload: #"{ command = "/usr/sbin/postfix reload" }"#), line: 3, key: "target.mail.reload.command",
            code: .wrongType, message: "expected an array of strings, found a string"),
        .init(
            document: document(reload: #"{ http = "http://x", expect-status = "200" }"#), line: 3, key: "target.mail.reload.expect-status",
            code: .wrongType, message: "an integer or an array of integers"),
        .init(
            document: document(reload: #"{ http = "http://x", headers = { X = 1 } }"#), line: 3, key: "target.mail.reload.headers.X",
            code: .wrongType, message: "expected a string, found an integer"),
        .init(document: "target = 1", line: 1, key: "target", code: .wrongType, message: "expected a table"),
        .init(document: "[target]\nmail = 1", line: 2, key: "target.mail", code: .wrongType, message: "expected a [target.mail] table"),
        // Missing keys.
        .init(
            document: "[target.mail]\nreload = { systemd = \"x\" }", line: 1, key: "target.mail.lineages",
            code: .missingKey, message: "target 'mail' names no certificate: it needs lineages, or cert and key"),
        .init(
            document: "\n[target.mail]\nlineages = [\"a\"]", line: 2, key: "target.mail.reload",
            code: .missingKey, message: "does not say how to reload the server"),
        .init(
            document: "[target.mail]\ncert = \"/c.pem\"\nreload = { systemd = \"x\" }", line: 1, key: "target.mail.key",
            code: .missingKey, message: "target 'mail' has cert but no key"),
        .init(document: document(reload: "{}"), line: 3, key: "target.mail.reload", code: .missingKey, message: "names no reload kind"),
        .init(
            document: document(reload: #"{ signal = "HUP" }"#), line: 3, key: "target.mail.reload.pidfile",
            code: .missingKey, message: "needs pidfile or unit"),
        .init(
            document: document(reload: #"{ stalwart = "http://x" }"#), line: 3, key: "target.mail.reload.token-file",
            code: .missingKey, message: "Stalwart's API needs credentials"),
        .init(
            document: document(reload: #"{ stalwart = "http://x", username = "admin" }"#), line: 3, key: "target.mail.reload.password-file",
            code: .missingKey, message: "username needs a password-file"),
        // Keys that exclude each other.
        .init(
            document: document(reload: #"{ caddy = "http://x", systemd = "caddy.service" }"#), line: 3, key: "target.mail.reload.systemd",
            code: .conflictingKeys, message: "two reload kinds in one target: 'caddy' (line 3) and 'systemd'"),
        .init(
            document: "[target.mail]\nlineages = [\"a\"]\n[target.mail.reload]\nsystemd = \"x\"\n\ncommand = [\"/bin/true\"]", line: 6,
            key: "target.mail.reload.command", code: .conflictingKeys, message: "two reload kinds in one target: 'systemd' (line 4)"),
        .init(
            document: "[target.mail]\nlineages = [\"a\"]\ncert = \"/c\"\nkey = \"/k\"\nreload = { systemd = \"x\" }", line: 3,
            key: "target.mail.cert", code: .conflictingKeys, message: "give either lineages or cert/key paths, not both"),
        .init(
            document: document(reload: #"{ signal = "HUP", pidfile = "/run/x.pid", unit = "x.service" }"#), line: 3,
            key: "target.mail.reload.unit", code: .conflictingKeys, message: "give pidfile or unit, not both"),
        .init(
            document: document(reload: #"{ http = "http://x", token-file = "/t", token-credential = "t" }"#), line: 3,
            key: "target.mail.reload.token-credential", code: .conflictingKeys, message: "give token-file or token-credential, not both"),
        // Bad values.
        .init(
            document: document(reload: #"{ systemd = "x", mode = "relaod" }"#), line: 3, key: "target.mail.reload.mode",
            code: .badValue, message: "'relaod' is not one of \"reload\", \"restart\", \"reload-or-restart\"", fix: "mode = \"reload\""),
        .init(
            document: document(reload: #"{ stalwart = "http://x", api = "graphql", token-file = "/t" }"#), line: 3,
            key: "target.mail.reload.api", code: .badValue, message: "'graphql' is not one of \"auto\", \"jmap\", \"rest\""),
        .init(
            document: document(reload: #"{ signal = "KILLME", pidfile = "/run/x.pid" }"#), line: 3, key: "target.mail.reload.signal",
            code: .badValue, message: "'KILLME' is not a signal"),
        .init(
            document: document(reload: #"{ command = ["postfix", "reload"] }"#), line: 3, key: "target.mail.reload.command",
            code: .badValue, message: "the program 'postfix' is not an absolute path", fix: "command = [\"/usr/sbin/postfix\", \"reload\"]"),
        .init(document: document(reload: #"{ command = [] }"#), line: 3, key: "target.mail.reload.command", code: .badValue, message: "is empty"),
        .init(
            document: document(reload: #"{ command = ["/bin/true"], timeout = 0 }"#), line: 3, key: "target.mail.reload.timeout",
            code: .badValue, message: "above 0"),
        .init(
            document: document(reload: #"{ caddy = "127.0.0.1:2019" }"#), line: 3, key: "target.mail.reload.caddy",
            code: .badValue, message: "is not an http:// or https:// URL"),
        .init(
            document: document(reload: #"{ caddy = "unix:run/caddy.sock" }"#), line: 3, key: "target.mail.reload.caddy",
            code: .badValue, message: "the socket path must be absolute"),
        .init(
            document: document(reload: #"{ http = "http://x", method = "post" }"#), line: 3, key: "target.mail.reload.method",
            code: .badValue, message: "'post' is not an HTTP method", fix: "method = \"POST\""),
        .init(
            document: document(reload: #"{ http = "http://x", expect-status = [200, 999] }"#), line: 3, key: "target.mail.reload.expect-status",
            code: .badValue, message: "999 is not an HTTP status"),
        .init(
            document: document(reload: #"{ http = "http://x", token-file = "relative.token" }"#), line: 3, key: "target.mail.reload.token-file",
            code: .badValue, message: "'relative.token' is not an absolute path"),
        .init(document: "certbot-dir = \"letsencrypt\"", line: 1, key: "certbot-dir", code: .badValue, message: "is not an absolute path"),
        .init(document: "warn-days = -1", line: 1, key: "warn-days", code: .badValue, message: "must be 0 or more"),
        .init(document: "settle = 60\nsettle-max = 30", line: 2, key: "settle-max", code: .badValue, message: "is shorter than settle"),
        .init(
            document: "[target.mail]\nlineages = [\"live/example.com\"]\nreload = { systemd = \"x\" }", line: 2, key: "target.mail.lineages",
            code: .badValue, message: "'live/example.com' is not a lineage name"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\n  \"smtp://mail:25\",\n  \"ftp://mail:21\",\n]", line: 6,
            key: "target.mail.verify", code: .badValue, message: "'ftp://mail:21': unknown scheme 'ftp'"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\"tls://ldap.example.com\"]", line: 4,
            key: "target.mail.verify", code: .badValue, message: "a tls:// URL needs a port", fix: "tls://ldap.example.com:8443"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\"imaps://:993\"]", line: 4,
            key: "target.mail.verify", code: .badValue, message: "has no host"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\"smtps//mail:465\"]", line: 4,
            key: "target.mail.verify", code: .badValue, message: "not a URL"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\"smtp://admin:hunter2@mail:25\"]", line: 4,
            key: "target.mail.verify", code: .badValue, message: "'smtp://…@mail:25': a verify URL takes no user name or password"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nverify = [\"imaps://mail:99999\"]", line: 4,
            key: "target.mail.verify", code: .badValue, message: "'99999' is not a port"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nhostnames = [\"https://mail.example.com\"]", line: 4,
            key: "target.mail.hostnames", code: .badValue, message: "is not a host name"),
        .init(
            document: document(reload: "{ systemd = \"x\" }") + "\nconnect = \"127.0.0.1:25\"", line: 4,
            key: "target.mail.connect", code: .badValue, message: "is not an address or host name"),
        // Duplicates are syntax errors of TOML itself.
        .init(document: "warn-days = 1\nwarn-days = 2", line: 2, key: "", code: .syntax, message: "duplicate key 'warn-days' (first set on line 1)"),
        .init(
            document: "[target.a]\nlineages = [\"a\"]\nreload = { systemd = \"x\" }\n[target.a]", line: 4, key: "", code: .syntax,
            message: "table 'a' is defined twice (first on line 1)"),
        .init(document: "[target.mail]\nlineages = [\"a\"\n", line: 2, key: "", code: .syntax, message: "never closed with ']'"),
    ]

    @Test("each mistake is reported at its line and dotted key", arguments: invalid)
    func rejects(_ example: Invalid) throws {
        let result = ConfigurationLoader.validate(example.document, path: "certreload.toml")
        #expect(result.configuration == nil)
        let error = try #require(result.errors.first, "no error for:\n\(example.document)")
        #expect(error.code == example.code, "\(error)")
        #expect(error.location.file == "certreload.toml")
        #expect(error.location.line == example.line, "\(error)")
        #expect(error.location.key == example.key, "\(error)")
        #expect(error.message.contains(example.message), "\(error)")
        if let fix = example.fix {
            #expect(error.fix?.contains(fix) == true, "fix: \(error.fix ?? "none")")
        }
        if example.code == .syntax {
            #expect(error.column != nil)
        }
    }

    @Test("errors render as FILE:LINE: KEY: message")
    func rendering() throws {
        let result = ConfigurationLoader.validate(document(reload: #"{ caddy = "http://x", systemd = "y" }"#), path: "certreload.toml")
        let error = try #require(result.errors.first)
        #expect(error.description == "certreload.toml:3: target.mail.reload.systemd: two reload kinds in one target: 'caddy' (line 3) and 'systemd'")
        let syntax = try #require(ConfigurationLoader.validate("a = ", path: "c.toml").errors.first)
        #expect(syntax.description == "c.toml:1:5: expected a value after '=', found the end of the file")
    }

    @Test("every problem is collected, in the order of the file")
    func collectsAll() {
        let result = ConfigurationLoader.validate(
            """
            warn-days = "x"
            [target.a]
            reload = { systemd = "a" }
            [target.b]
            lineages = ["b"]
            reload = { systemd = "b", mode = "bounce" }
            [target.c]
            lineages = ["c"]
            reload = { systemd = "c" }
            """, path: "certreload.toml")
        #expect(result.configuration == nil)
        #expect(result.errors.map(\.location.line) == [1, 2, 6])
        #expect(result.errors.map(\.location.key) == ["warn-days", "target.a.lineages", "target.b.reload.mode"])
    }

    @Test("a target name that is not a bare key is quoted in the dotted key")
    func quotedTargetName() throws {
        let error = try #require(
            ConfigurationLoader.validate("[target.\"mail.example.com\"]\nlineages = [\"a\"]\nreload = { systemd = \"x\", mode = \"no\" }", path: "c.toml")
                .errors.first)
        #expect(error.location.key == "target.\"mail.example.com\".reload.mode")
    }

    @Test("watch settings are read and checked")
    func watchSettings() {
        let result = ConfigurationLoader.validate("settle = 30\nsettle-max = 600.5\nrecheck = 43200\npoll-interval = 10", path: "c.toml")
        #expect(result.errors.isEmpty)
        #expect(result.watch == WatchSettings(settle: 30, settleMax: 600.5, recheck: 43200, pollInterval: 10))
        #expect(ConfigurationLoader.validate("", path: "c.toml").watch == WatchSettings())
        #expect(WatchTiming(WatchSettings()).pollInterval == .seconds(30))
        let zero = ConfigurationLoader.validate("poll-interval = 0", path: "c.toml")
        #expect(zero.errors.contains { "\($0)".contains("poll-interval") }, "\(zero.errors)")
    }

    @Test("target settings: verify-timeout, probe-without-sni, warn-days, ca-file")
    func targetSettings() throws {
        let configuration = try load(
            document(reload: #"{ systemd = "x" }"#)
                + "\nverify-timeout = 3\nprobe-without-sni = true\nwarn-days = 30\nca-file = \"/etc/ssl/ca.pem\"\nverify = [\"tls://[::1]:8443\"]")
        let target = try #require(configuration.targets.first)
        #expect(target.verifyTimeout == 3)
        #expect(target.probeWithoutSNI)
        #expect(target.warnDays == 30)
        #expect(target.caFile == "/etc/ssl/ca.pem")
        #expect(target.verify.map(\.url) == ["tls://[::1]:8443"])
        #expect(target.verify.map(\.port) == [8443])
    }

    @Test("insecure = true: only for an https:// HTTP endpoint, never with ca-file; verification is on otherwise")
    func insecure() throws {
        let https = try load(document(reload: #"{ http = "https://app.example.com/reload" }"#) + "\ninsecure = true")
        #expect(https.targets[0].endpointTrust == .unverified)
        #expect(https.targets[0].insecureWarning?.code == .tlsVerificationOff)
        let verified = try load(document(reload: #"{ caddy = "https://127.0.0.1:2019" }"#) + "\ninsecure = false")
        #expect(verified.targets[0].endpointTrust == .system)
        #expect(verified.targets[0].insecureWarning == nil)
        let pinned = try load(document(reload: #"{ caddy = "https://127.0.0.1:2019" }"#) + "\nca-file = \"/etc/ssl/ca.pem\"")
        #expect(pinned.targets[0].endpointTrust == .caFile("/etc/ssl/ca.pem"))

        for (reload, extra, says) in [
            (#"{ http = "http://127.0.0.1/reload" }"#, "", "plain HTTP"),
            (#"{ systemd = "nginx.service" }"#, "", "has none"),
            (#"{ caddy = "unix:/run/caddy/admin.sock" }"#, "", "has none"),
            (#"{ http = "https://app.example.com/reload" }"#, "\nca-file = \"/etc/ssl/ca.pem\"", "contradict"),
        ] {
            #expect {
                try load(document(reload: reload) + extra + "\ninsecure = true")
            } throws: { error in
                guard let error = error as? ConfigError else { return false }
                return (error.code == .badValue || error.code == .conflictingKeys && says == "contradict")
                    && error.location.key == "target.mail.insecure" && error.message.contains(says)
            }
        }
        #expect(throws: ConfigError.self) { try load(document(reload: #"{ systemd = "x" }"#) + "\ninsecure = \"yes\"") }
    }

    @Test(
        "verify URLs take their scheme's port",
        arguments: [
            ("smtp://mail.example.com", "smtp", "mail.example.com", 25),
            ("submission://m", "submission", "m", 587),
            ("SMTPS://m", "smtps", "m", 465),
            ("submissions://m", "submissions", "m", 465),
            ("imap://m", "imap", "m", 143),
            ("imaps://m:10993", "imaps", "m", 10993),
            ("pop3://m", "pop3", "m", 110),
            ("pop3s://m", "pop3s", "m", 995),
            ("https://m/health", "https", "m", 443),
            ("tls://[2001:db8::1]:636", "tls", "2001:db8::1", 636),
        ])
    func verifyEndpoints(_ url: String, _ scheme: String, _ host: String, _ port: Int) throws {
        let endpoint = try VerifyEndpoint(parsing: url)
        #expect(endpoint.scheme == scheme)
        #expect(endpoint.host == host)
        #expect(endpoint.port == port)
    }

    @Test("a world-readable token file is refused with the chmod fix; a private one is accepted")
    func worldReadableToken() throws {
        let directory = try temporaryDirectory()
        defer {
            unlink(directory + "/open.token")
            unlink(directory + "/private.token")
            unlink(directory + "/certreload.toml")
            rmdir(directory)
        }
        try write("s3cr3t-value\n", to: directory + "/open.token", mode: 0o644)
        try write("secret\n", to: directory + "/private.token", mode: 0o600)
        let open = ConfigurationLoader.validate(
            document(reload: "{ stalwart = \"http://127.0.0.1:8080\", token-file = \"\(directory)/open.token\" }"), path: "certreload.toml")
        let error = try #require(open.errors.first)
        #expect(error.code == .tokenFileInsecure)
        #expect(error.location == ConfigLocation(file: "certreload.toml", line: 3, key: "target.mail.reload.token-file"))
        #expect(error.message.contains("\(directory)/open.token is readable by every user"))
        #expect(error.fix == "chmod 0600 \(directory)/open.token")
        #expect(!error.description.contains("s3cr3t-value"))

        let password = ConfigurationLoader.validate(
            document(reload: "{ stalwart = \"http://s\", username = \"admin\", password-file = \"\(directory)/open.token\" }"),
            path: "certreload.toml")
        #expect(password.errors.first?.location.key == "target.mail.reload.password-file")
        #expect(password.errors.first?.code == .tokenFileInsecure)

        // Through the file, as certreload reads it.
        try write(
            document(reload: "{ http = \"http://app/r\", token-file = \"\(directory)/private.token\" }"), to: directory + "/certreload.toml",
            mode: 0o644)
        let configuration = try ConfigurationLoader.load(path: directory + "/certreload.toml")
        #expect(configuration.path == directory + "/certreload.toml")
        #expect(
            configuration.targets.first?.reload
                == .http(url: "http://app/r", method: "POST", headers: [:], body: nil, token: .file("\(directory)/private.token"), expectStatus: []))
    }

    @Test("the configuration file is read safely: missing, a FIFO, a directory")
    func unreadableFile() throws {
        let directory = try temporaryDirectory()
        defer {
            unlink(directory + "/fifo.toml")
            rmdir(directory)
        }
        #expect(mkfifo(directory + "/fifo.toml", 0o600) == 0)
        let fifo = ConfigurationLoader.validate(path: directory + "/fifo.toml")
        #expect(fifo.errors.first?.code == .unreadable)
        #expect(fifo.errors.first?.message == "configuration file is a FIFO, not a regular file")
        #expect(fifo.errors.first?.description == "\(directory)/fifo.toml: configuration file is a FIFO, not a regular file")

        let missing = ConfigurationLoader.validate(path: directory + "/none.toml")
        #expect(missing.errors.first?.message == "configuration file does not exist")
        #expect(ConfigurationLoader.validate(path: directory).errors.first?.message == "configuration file is a directory, not a regular file")
        #expect(throws: ConfigError.self) { _ = try ConfigurationLoader.load(path: directory + "/none.toml") }
    }

    @Test("--config, then CERTRELOAD_CONFIG, then the default")
    func configPath() {
        unsetenv("CERTRELOAD_CONFIG")
        #expect(ConfigurationLoader.path(option: nil) == "/etc/certreload/certreload.toml")
        setenv("CERTRELOAD_CONFIG", "/tmp/from-env.toml", 1)
        defer { unsetenv("CERTRELOAD_CONFIG") }
        #expect(ConfigurationLoader.path(option: nil) == "/tmp/from-env.toml")
        #expect(ConfigurationLoader.path(option: "/x.toml") == "/x.toml")
    }

    @Test("did-you-mean picks the nearest key, and nothing when none is near")
    func nearest() {
        #expect(nearestKey("lineage", in: ConfigurationDecoder.targetKeys) == "lineages")
        #expect(nearestKey("verify_timeout", in: ConfigurationDecoder.targetKeys) == "verify-timeout")
        #expect(nearestKey("hostname", in: ConfigurationDecoder.targetKeys) == "hostnames")
        #expect(nearestKey("zzzzzzzz", in: ConfigurationDecoder.targetKeys) == nil)
    }

    @Test("the packaged example loads, with one target per supported server")
    func packagedExample() throws {
        // Tests/CertReloadTests/Config/ThisFile.swift → the package root.
        let root = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast(4).joined(separator: "/")
        let path = root + "/Packaging/certreload.toml.example"
        let result = ConfigurationLoader.validate(path: path)
        #expect(result.errors.isEmpty, "\(result.errors)")
        let configuration = try #require(result.configuration)
        let reloads = configuration.targets.map(\.reload)
        #expect(reloads.contains { if case .stalwart(_, .jmap, _, _, _) = $0 { true } else { false } })
        #expect(reloads.contains { if case .stalwart(_, .rest, _, _, _) = $0 { true } else { false } })
        #expect(reloads.contains { if case .caddy = $0 { true } else { false } })
        #expect(reloads.contains(.signal(name: "SIGHUP", pidFile: "/run/nginx.pid", unit: nil)))
        #expect(reloads.contains(.command(argv: ["/usr/sbin/postfix", "reload"], timeout: 60)))
        #expect(reloads.contains(.command(argv: ["/usr/bin/doveadm", "reload"], timeout: 60)))
        #expect(reloads.contains { if case .systemd = $0 { true } else { false } })
        #expect(reloads.contains { if case .http(_, _, _, _, _, [200, 204]) = $0 { true } else { false } })
        #expect(configuration.targets.contains { $0.certFile != nil && $0.lineages.isEmpty })

        // Every key the loader knows appears in the example, set or commented.
        let text = String(decoding: try SafeFile.read(path).get(), as: UTF8.self)
        let everyKey = ConfigurationDecoder.topLevelKeys + ConfigurationDecoder.targetKeys + ConfigurationDecoder.reloadKinds.flatMap(\.keys)
        for key in everyKey {
            #expect(text.contains("\(key) =") || text.contains("\(key)  ") || text.contains("[\(key)."), "the example does not mention \(key)")
        }
    }
}

/// One grammar: what the loader takes for `connect` and hosts is exactly what the probe dials.
@Suite("Configuration and probe agree on addresses")
struct AddressGrammarTests {
    @Test(arguments: [
        "127.0.0.1", "::1", "[::1]", "mx.internal", "mail.example.com", "", "127.0.0.1:25", "[::1]:587", "a b",
        "mx.internal.", "-bad.example", "[nope]", "exa_mple.com",
    ])
    func connectAcceptedByBothOrNeither(_ text: String) {
        let loaded = ConfigurationLoader.validate(
            "[target.mail]\nlineages = [\"example.com\"]\nreload = { systemd = \"x\" }\nconnect = \"\(text)\"\n",
            path: "certreload.toml")
        let dialable = DialTarget(connect: text, defaultPort: 25) != nil
        #expect((loaded.errors.isEmpty) == dialable, "connect = \"\(text)\": loader \(loaded.errors.isEmpty ? "accepts" : "refuses"), probe \(dialable ? "accepts" : "refuses")")
    }

    @Test(arguments: ["mail.example.com", "mail.example.com.", "xn--bcher-kva.example", "*.example.com", "a..b"])
    func verifyHostAcceptedByBothOrNeither(_ host: String) {
        let url = "smtp://\(host):25"
        let loaded = ConfigurationLoader.validate(
            "[target.mail]\nlineages = [\"example.com\"]\nreload = { systemd = \"x\" }\nverify = [\"\(url)\"]\n",
            path: "certreload.toml")
        #expect(loaded.errors.isEmpty == (DialTarget(connect: host, defaultPort: 25) != nil), "\(url)")
    }
}
