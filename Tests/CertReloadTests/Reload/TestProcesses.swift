import Logging
@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A log handler that keeps every message, for asserting what an administrator would read.
struct CapturingLogHandler: LogHandler {
    final class Store: Sendable {
        let entries = Locked<[(Logger.Level, String, Logger.Metadata)]>([])
        var messages: [String] { entries.withLock { $0.map(\.1) } }
        /// Messages at info and above (what an administrator sees by default).
        var infoMessages: [String] { entries.withLock { $0.filter { $0.0 >= .info }.map(\.1) } }
    }

    let store: Store
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        store.entries.withLock { $0.append((event.level, event.message.description, merged)) }
    }

    /// A context whose logger records into a new store.
    static func context(timeout: Double = 10) -> (ReloadContext, Store) {
        let store = Store()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(store: store) }
        return (ReloadContext(logger: logger, timeout: timeout), store)
    }
}


/// Waits until `condition` holds, checking every 10 ms, at most `seconds`.
func eventually(within seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Deadline(seconds: seconds)
    while !condition() {
        if deadline.hasPassed { return false }
        _ = poll(nil, 0, 10)
    }
    return true
}

/// certreload's environment plus `extra` ("NAME=value"), for spawning helpers.
func environment(adding extra: [String]) -> [String] {
    var entries: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
        entries.append(String(cString: entry))
        pointer += 1
    }
    let names = Set(extra.map { $0.prefix { $0 != "=" } })
    return entries.filter { !names.contains($0.prefix { $0 != "=" }) } + extra
}

/// The repository's root, found from this file's path.
let repositoryRoot: String = {
    let path = #filePath
    let marker = "/Tests/CertReloadTests/"
    guard let range = path.firstRange(of: marker) else { return "." }
    return String(path[..<range.lowerBound])
}()
