/// certreload's configuration (`/etc/certreload/certreload.toml`), after validation.
public struct Configuration: Sendable {
    /// The file it was read from.
    public var path: String
    public var certbotDirectory: String = "/etc/letsencrypt"
    public var warnDays: Int = 14
    public var stateDirectory: String = "/var/lib/certreload"
    /// Targets in the order the file lists them.
    public var targets: [TargetConfiguration] = []
    /// Watch-mode timing (`settle`, `settle-max`, `recheck`); nil fields take the defaults.
    public var watch = WatchSettings()

    public init(path: String) {
        self.path = path
    }
}

/// Where a key came from, for error messages: "certreload.toml:12 target.mail.reload".
public struct ConfigLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String

    public init(file: String, line: Int, key: String) {
        self.file = file
        self.line = line
        self.key = key
    }

    public var description: String { "\(file):\(line): \(key)" }
}

/// A server certreload keeps up to date: `[target.NAME]`.
public struct TargetConfiguration: Sendable {
    public var name: String
    public var location: ConfigLocation
    /// certbot lineage names (empty when `cert`/`key` are given).
    public var lineages: [String] = []
    public var certFile: String?
    public var keyFile: String?
    public var chainFile: String?
    /// The account the server reads the files as.
    public var user: String?
    public var hostnames: [String] = []
    public var reload: ReloadConfiguration
    /// Verify URLs such as `smtp://mail.example.com:25`, parsed once by the loader.
    public var verify: [VerifyEndpoint] = []
    /// Dial this address (`host`, `host:port`, `[v6]:port`) instead of the URL's host (SNI
    /// stays the URL's host); the loader checks it with the grammar the probe dials with.
    public var connect: String?
    /// Trust this CA for the reload endpoint's TLS (and for verify's trust warning).
    public var caFile: String?
    /// `insecure = true`: the reload endpoint's TLS certificate and name are not verified.
    /// Only for an `https://` Stalwart, Caddy or HTTP endpoint; every request logs a warning.
    public var insecure: Bool = false
    /// How long verify retries until the new certificate is served (seconds).
    public var verifyTimeout: Double = 10
    /// Also probe without SNI and warn when the default certificate differs.
    public var probeWithoutSNI: Bool = false
    /// Per-target overrides of the global settings.
    public var warnDays: Int?

    public init(name: String, location: ConfigLocation, reload: ReloadConfiguration) {
        self.name = name
        self.location = location
        self.reload = reload
    }
}

extension TargetConfiguration {
    /// Whom the reload endpoint's TLS certificate must chain to: `ca-file`, `insecure`, or the system.
    public var endpointTrust: EndpointTrust {
        if insecure { return .unverified }
        return caFile.map(EndpointTrust.caFile) ?? .system
    }
}

extension TargetConfiguration {
    /// The warning every request to an `insecure = true` endpoint carries; nil when verified.
    public var insecureWarning: Problem? {
        guard insecure, let url = reload.httpURL else { return nil }
        return Problem(
            .warning, .tlsVerificationOff, path: HTTPEndpoint.redact(url),
            message: "TLS verification of the reload endpoint \(HTTPEndpoint.redact(url)) is off (insecure = true in target.\(name)): "
                + "whoever answers at that address receives the reload request and its credentials",
            fix: "give the endpoint a certificate from a CA you control, set ca-file to that CA, and remove insecure")
    }
}

/// Whom a reload endpoint's TLS certificate must chain to (curl verifies peer and host name).
public enum EndpointTrust: Sendable, Equatable {
    /// The system trust store: the default.
    case system
    /// Only the CAs in this PEM file (a target's `ca-file`).
    case caFile(String)
    /// Nothing is verified (`insecure = true`): whoever answers on the path gets the request.
    case unverified
}

/// A secret read from a file or a systemd credential, never from the command line.
public enum SecretSource: Sendable, Equatable {
    /// A file path (must not be readable by other users).
    case file(String)
    /// A name in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    case credential(String)
}

/// How a target is told to reload: exactly one kind per target.
public enum ReloadConfiguration: Sendable, Equatable {
    public enum StalwartAPI: String, Sendable, Equatable { case auto, jmap, rest }
    public enum SystemdMode: String, Sendable, Equatable {
        case reload, restart
        case reloadOrRestart = "reload-or-restart"
    }

    /// Stalwart: JMAP `x:Action/set` (0.16+) or REST `/api/reload/certificate` (0.15).
    case stalwart(url: String, api: StalwartAPI, token: SecretSource?, username: String?, password: SecretSource?)
    /// Caddy admin API (TCP URL or `unix:/path`): GET /config/ then POST /load with must-revalidate.
    case caddy(url: String)
    /// Any HTTP API.
    case http(
        url: String, method: String, headers: [String: String], body: String?, token: SecretSource?,
        expectStatus: [Int])
    /// A systemd unit over D-Bus.
    case systemd(unit: String, mode: SystemdMode)
    /// A signal to a process found by pid file or by a unit's MainPID.
    case signal(name: String, pidFile: String?, unit: String?)
    /// A program run as argv (no shell), with a timeout in seconds.
    case command(argv: [String], timeout: Double)

    /// The reload endpoint's URL when the reload goes over HTTP(S) on TCP; nil otherwise.
    public var httpURL: String? {
        switch self {
        case .stalwart(let url, _, _, _, _), .http(let url, _, _, _, _, _): url
        case .caddy(let url): url.hasPrefix("unix:") ? nil : url
        case .systemd, .signal, .command: nil
        }
    }
}
