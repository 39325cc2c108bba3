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
    /// Raised when the caller gives up (deadline, shutdown): the blocking work stops early,
    /// killing what it started.
    public var cancellation: CancellationFlag

    public init(
        logger: Logger, timeout: Double = 30, credentialsDirectory: String? = nil,
        cancellation: CancellationFlag = CancellationFlag()
    ) {
        self.logger = logger
        self.timeout = timeout
        self.credentialsDirectory = credentialsDirectory
        self.cancellation = cancellation
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

    /// The same error with every secret of `redactor` gone from its message and fix.
    func scrubbed(by redactor: Redactor) -> ReloadError {
        ReloadError(code, redactor.scrub(message), fix: fix.map(redactor.scrub))
    }
}

/// Something that tells one server to load its certificate files again.
///
/// A new reload kind: a type conforming to `BlockingReloadTarget` (its work is C calls that
/// block), a case in `ReloadConfiguration`, its keys in `ConfigurationLoader`, and a line in
/// `TargetConfiguration.makeReloadTarget()`.
public protocol ReloadTarget: Sendable {
    /// "Stalwart (JMAP) at http://127.0.0.1:8080", for logs and reports.
    var summary: String { get }
    /// Asks the server to reload and waits for its answer; returns what it said, one line.
    /// Never logs or returns a secret. Cancelling the task stops the work early.
    func reload(context: ReloadContext) async throws(ReloadError) -> String
}

/// A reload target whose work is blocking C calls (libcurl, sd-bus, waitpid): `reload` runs
/// it on a thread of its own, never on Swift's cooperative pool, and raises
/// `context.cancellation` when the calling task is cancelled.
public protocol BlockingReloadTarget: ReloadTarget {
    /// The blocking work; polls `context.cancellation` between bounded waits.
    func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String
}

extension BlockingReloadTarget {
    public func reload(context: ReloadContext) async throws(ReloadError) -> String {
        try await Blocking.run { (flag) throws(ReloadError) -> String in
            var context = context
            context.cancellation = flag
            return try self.reloadBlocking(context: context)
        }
    }
}
