public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where certreload's log goes: journald when systemd started it, else stderr.
/// Only `main` chooses; library code takes a `Logger`.
public enum LoggingBackend: String, Sendable, Equatable {
    case journal
    case stderr

    /// journald when `JOURNAL_STREAM` or `NOTIFY_SOCKET` is set (a systemd service) and
    /// journald's socket exists, else stderr: without journald, entries would be lost silently.
    public static func choose(environment: [String: String], journalAvailable: Bool = journalSocketExists()) -> LoggingBackend {
        let set = { (name: String) in environment[name].map { !$0.isEmpty } ?? false }
        return (set("JOURNAL_STREAM") || set("NOTIFY_SOCKET")) && journalAvailable ? .journal : .stderr
    }

    /// Whether journald listens where libsystemd sends entries.
    public static func journalSocketExists() -> Bool {
        var info = stat()
        return stat("/run/systemd/journal/socket", &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// `choose(environment:)` over certreload's own environment.
    public static func fromEnvironment() -> LoggingBackend {
        var environment: [String: String] = [:]
        for name in ["JOURNAL_STREAM", "NOTIFY_SOCKET"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return choose(environment: environment)
    }

    /// A handler of this kind.
    public func makeHandler(label: String, logLevel: Logger.Level) -> any LogHandler {
        switch self {
        case .journal: JournalLogHandler(label: label, logLevel: logLevel)
        case .stderr: StderrLogHandler(label: label, logLevel: logLevel)
        }
    }

    /// Bootstraps swift-log with the backend the environment asks for; returns which one.
    /// Call once, from `main`.
    @discardableResult
    public static func bootstrap(logLevel: Logger.Level = .info) -> LoggingBackend {
        let backend = fromEnvironment()
        LoggingSystem.bootstrap { label in backend.makeHandler(label: label, logLevel: logLevel) }
        return backend
    }
}
