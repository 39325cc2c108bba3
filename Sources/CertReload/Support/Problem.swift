/// How bad a problem is: an error makes a lineage unusable, a warning does not.
public enum Severity: String, Sendable, Codable, Comparable {
    case warning
    case error

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        lhs == .warning && rhs == .error
    }
}

/// Stable problem codes. Tests, monitoring and the README rely on them: add, never rename.
public enum ProblemCode: String, Sendable, CaseIterable, Codable {
    // Resolution of certbot's links and reading of files.
    case missing
    case danglingLink = "dangling-link"
    case linkLoop = "link-loop"
    case notRegularFile = "not-regular-file"
    case tooLarge = "too-large"
    case versionMismatch = "version-mismatch"
    case wrongLinkTarget = "wrong-link-target"
    // Access as the service user.
    case notTraversable = "not-traversable"
    case unreadable
    case accessLostOnRenewal = "access-lost-on-renewal"
    // Validation.
    case badPEM = "bad-pem"
    case encryptedKey = "encrypted-key"
    case keyMismatch = "key-mismatch"
    case chainMismatch = "chain-mismatch"
    case chainInvalid = "chain-invalid"
    case expired
    case notYetValid = "not-yet-valid"
    case expiringSoon = "expiring-soon"
    case hostnameNotCovered = "hostname-not-covered"
    case keyWorldReadable = "key-world-readable"
    case weakKey = "weak-key"
    // Reload (certreload deploy / reload).
    case reloadFailed = "reload-failed"
    case reloadUnauthorized = "reload-unauthorized"
    case reloadUnreachable = "reload-unreachable"
    case reloadTimeout = "reload-timeout"
    case reloadSkipped = "reload-skipped"
    /// `insecure = true`: the reload endpoint's TLS is not verified (a warning at every request).
    case tlsVerificationOff = "tls-verification-off"
    // Verify: what the server really serves.
    case verifyStale = "verify-stale"
    case verifyWrongCertificate = "verify-wrong-certificate"
    case starttlsNotOffered = "starttls-not-offered"
    case starttlsRefused = "starttls-refused"
    case verifyConnectFailed = "verify-connect-failed"
    case verifyHandshakeFailed = "verify-handshake-failed"
    case verifyHostnameMismatch = "verify-hostname-mismatch"
    case verifyUntrusted = "verify-untrusted"
    case sniDefaultDiffers = "sni-default-differs"
    /// doctor: the serving process started before its account joined the group that reads the key.
    case groupNotInProcess = "group-not-in-process"
    // Configuration and secrets.
    case tokenFileInsecure = "token-file-insecure"
    // Stalwart: credentials and its certificate registry (0.16 / 1.0).
    case stalwartCredentialShape = "stalwart-credential-shape"
    case stalwartCertificateInline = "stalwart-certificate-inline"
    case stalwartMetadataStale = "stalwart-metadata-stale"
    case stalwartLineageUnused = "stalwart-lineage-unused"
    case stalwartListenerTLSOff = "stalwart-listener-tls-off"
    case stalwartListenerTLSMode = "stalwart-listener-tls-mode"
    case stalwartRegistryUnreadable = "stalwart-registry-unreadable"
    // Added by the reliability work (issue 11).
    case accessProbeTimeout = "access-probe-timeout"
    case stateUnwritable = "state-unwritable"
}

extension ProblemCode {
    /// Resolving certbot's links failed: the files cannot be found or read as regular files.
    public static let resolution: Set<ProblemCode> = [
        .missing, .danglingLink, .linkLoop, .notRegularFile, .tooLarge, .versionMismatch, .wrongLinkTarget,
    ]
    /// The lineage is not one usable set of files: certbot is half-way through a renewal, or
    /// the files do not belong together. Watch waits for these to clear; nothing reloads on them.
    public static let inconsistentLineage: Set<ProblemCode> = resolution.union([.badPEM, .keyMismatch, .chainMismatch])
    /// The service user cannot reach or keep reaching the files.
    public static let access: Set<ProblemCode> = [.notTraversable, .unreadable, .accessLostOnRenewal]
}

/// One thing wrong with a lineage, worded for the person who has to fix it.
public struct Problem: Sendable, Equatable {
    public var severity: Severity
    public var code: ProblemCode
    /// The path the problem is about (the first one that blocks, for access problems).
    public var path: String?
    /// The account the problem applies to, when it is about access.
    public var user: String?
    public var message: String
    /// A command or change a person can paste; nil when there is nothing to paste.
    public var fix: String?

    public init(
        _ severity: Severity, _ code: ProblemCode, path: String? = nil, user: String? = nil,
        message: String, fix: String? = nil
    ) {
        self.severity = severity
        self.code = code
        self.path = path
        self.user = user
        self.message = message
        self.fix = fix
    }
}
