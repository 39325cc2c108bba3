public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import CCertReloadShims.Systemd

/// A swift-log handler that writes structured entries to journald with `sd_journal_sendv`:
/// MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=certreload, MESSAGE_ID when the metadata holds one,
/// CODE_FILE/CODE_LINE/CODE_FUNC (once each, CODE_FILE module-relative as `#fileID` gives it),
/// and each metadata key as an upper-cased field (`certreload_target` → `CERTRELOAD_TARGET`).
///
/// When sending fails the entry goes to stderr instead, as `StderrLogHandler` writes it. A
/// missing journald socket is not a failure: libsystemd drops the entry silently.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let identifier: String

    public init(
        label: String, logLevel: Logger.Level = .info, identifier: String = "certreload",
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.logLevel = logLevel
        self.identifier = identifier
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = StderrLogHandler.merge(metadata, provider: metadataProvider, event: event)
        let fields = Self.fields(
            level: event.level, message: event.message.description, metadata: merged, identifier: identifier,
            file: event.file, function: event.function, line: event.line)
        if Self.send(fields) < 0 {
            StderrLogHandler.write(
                StderrLogHandler.line(
                    identifier: identifier, level: event.level, message: event.message.description, metadata: merged))
        }
    }

    /// Fields that journald fills in itself or that this handler sets; metadata keys that
    /// map onto one of them are written as `META_<NAME>` instead. (`MESSAGE_ID` is not among
    /// them: a metadata `MESSAGE_ID` holding a 128-bit id becomes the entry's own.)
    static let reservedFields: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID",
        "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
    ]

    /// The journal entry for one log event, as "NAME=value" strings in a fixed order:
    /// MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MESSAGE_ID (if any), CODE_FILE, CODE_LINE,
    /// CODE_FUNC, then the other metadata sorted by key.
    ///
    /// A metadata key `MESSAGE_ID` (any case) whose value is 32 hex digits is the entry's
    /// MESSAGE_ID, what `journalctl MESSAGE_ID=…` matches; any other value is kept as
    /// `META_MESSAGE_ID`. An absolute `file` (a `#filePath`) is cut to its last component, so
    /// no build machine's path reaches the journal.
    public static func fields(
        level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String = "certreload",
        file: String, function: String, line: UInt
    ) -> [String] {
        var fields = [
            "MESSAGE=\(message)",
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
        ]
        var rest: [String] = []
        var messageID: String?
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            var name = fieldName(key)
            let text = StderrLogHandler.text(value)
            if name == "MESSAGE_ID" {
                if messageID == nil, isMessageID(text) {
                    messageID = text.lowercased()
                    continue
                }
                name = "META_MESSAGE_ID"
            } else if reservedFields.contains(name) {
                name = "META_" + name
            }
            rest.append("\(name)=\(text)")
        }
        if let messageID { fields.append("MESSAGE_ID=\(messageID)") }
        fields += [
            "CODE_FILE=\(codeFile(file))",
            "CODE_LINE=\(line)",
            "CODE_FUNC=\(function)",
        ]
        return fields + rest
    }

    /// journald's MESSAGE_ID format: a 128-bit id as 32 hex digits (sd_id128_from_string
    /// also takes the UUID form with dashes; certreload's ids have none).
    static func isMessageID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
        }
    }

    /// `#fileID` ("CertReload/Watch/WatchService.swift") as is; an absolute path only by its
    /// last component.
    static func codeFile(_ file: String) -> String {
        guard file.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return file }
        return String(file[file.index(after: slash)...])
    }

    /// A metadata key as a journal field name: ASCII letters upper-cased, every other
    /// character but digits turned into `_`, no leading `_` (journald reserves those for
    /// trusted fields), `META_` in front of a leading digit or an empty name, at most 64
    /// characters.
    public static func fieldName(_ key: String) -> String {
        var bytes: [UInt8] = key.utf8.map { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - 32
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): byte
            default: UInt8(ascii: "_")
            }
        }
        while bytes.first == UInt8(ascii: "_") { bytes.removeFirst() }
        if bytes.isEmpty || (bytes[0] >= UInt8(ascii: "0") && bytes[0] <= UInt8(ascii: "9")) {
            bytes.insert(contentsOf: "META_".utf8, at: 0)
        }
        return String(decoding: bytes.prefix(64), as: UTF8.self)
    }

    /// syslog priorities, as journald stores them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Sends the fields with sd_journal_sendv; returns its result (-errno on failure).
    @discardableResult
    static func send(_ fields: [String]) -> Int32 {
        // All fields back to back in one buffer; each iovec points into it.
        var storage: [UInt8] = []
        var lengths: [Int] = []
        for field in fields {
            storage.append(contentsOf: field.utf8)
            lengths.append(field.utf8.count)
        }
        return storage.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var pointers: [UnsafePointer<CChar>?] = []
                var offset = 0
                for length in lengths {
                    pointers.append(chars.baseAddress.map { $0 + offset })
                    offset += length
                }
                return certreload_journal_send_fields(pointers, lengths, lengths.count)
            }
        }
    }
}

/// A swift-log handler writing one line per message to stderr:
/// `certreload: warning: message key=value`.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let identifier: String

    public init(
        label: String, logLevel: Logger.Level = .info, identifier: String = "certreload",
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.logLevel = logLevel
        self.identifier = identifier
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = Self.merge(metadata, provider: metadataProvider, event: event)
        Self.write(Self.line(identifier: identifier, level: event.level, message: event.message.description, metadata: merged))
    }

    /// `certreload: info: message key=value key2="a value"`, metadata sorted by key, newlines
    /// in the message escaped so that one message stays one line.
    public static func line(identifier: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(identifier): \(level.rawValue): \(escapeNewlines(message))"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(quoteIfNeeded(text(value)))"
        }
        return line
    }

    static func merge(_ handlerMetadata: Logger.Metadata, provider: Logger.MetadataProvider?, event: LogEvent) -> Logger.Metadata {
        var merged = handlerMetadata
        if let provided = provider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        return merged
    }

    static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        default: value.description
        }
    }

    static func escapeNewlines(_ text: String) -> String {
        guard text.contains(where: { $0 == "\n" || $0 == "\r" }) else { return text }
        return text.replacingAll("\r\n", "\\n").replacingAll("\n", "\\n").replacingAll("\r", "\\r")
    }

    static func quoteIfNeeded(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "\t" || $0 == "\n" || $0 == "=" }
        guard needsQuotes else { return value }
        return "\"" + escapeNewlines(value.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"")) + "\""
    }

    /// One write(2) per line, so lines from several threads do not interleave.
    static func write(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced (Foundation's replacingOccurrences, without it).
    func replacingAll(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
