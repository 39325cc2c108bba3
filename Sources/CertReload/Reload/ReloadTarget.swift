public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a reload needs besides its own configuration.
public struct ReloadContext: Sendable {
    public var logger: Logger
    /// Seconds this reload may take in all (connect, request, waiting for a job).
    public var timeout: Double
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`), for `SecretSource.credential`.
    public var credentialsDirectory: String?

    public init(logger: Logger, timeout: Double = 30, credentialsDirectory: String? = nil) {
        self.logger = logger
        self.timeout = timeout
        self.credentialsDirectory = credentialsDirectory
    }
}

/// Why a reload failed, worded for the administrator: a stable code, the cause, a fix.
public struct ReloadError: Error, Sendable, CustomStringConvertible {
    public var code: ProblemCode
    public var message: String
    public var fix: String?

    public init(_ code: ProblemCode, _ message: String, fix: String? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
    }

    public var description: String { message }
}

/// Something that tells one server to load its certificate files again.
public protocol ReloadTarget: Sendable {
    /// "Stalwart (JMAP) at http://127.0.0.1:8080", for logs and reports.
    var summary: String { get }
    /// Asks the server to reload and waits for its answer; returns what it said, one line.
    /// Never logs or returns a secret.
    func reload(context: ReloadContext) throws(ReloadError) -> String
}
