import Logging
import Testing
@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("journald and stderr log handlers")
struct JournalLogHandlerTests {
    @Test("an entry carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_* and metadata upper-cased")
    func fields() {
        let fields = JournalLogHandler.fields(
            level: .warning, message: "reload of mail failed", metadata: ["certreload_target": "mail", "unit": "stalwart.service"],
            file: "Reload/Deploy.swift", function: "deploy()", line: 42)
        #expect(fields == [
            "MESSAGE=reload of mail failed",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=certreload",
            "CODE_FILE=Reload/Deploy.swift",
            "CODE_LINE=42",
            "CODE_FUNC=deploy()",
            "CERTRELOAD_TARGET=mail",
            "UNIT=stalwart.service",
        ])
    }

    @Test("metadata keys become valid journal field names", arguments: [
        ("certreload_target", "CERTRELOAD_TARGET"),
        ("lineage-name", "LINEAGE_NAME"),
        ("a.b c", "A_B_C"),
        ("_trusted", "TRUSTED"),
        ("1st", "META_1ST"),
        ("", "META_"),
        ("été", "T__"),  // é is two UTF-8 bytes, each a "_"; leading "_" are dropped
    ])
    func fieldNames(key: String, field: String) {
        let name = JournalLogHandler.fieldName(key)
        #expect(name == field)
        #expect(name.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 })
        #expect(name.first != "_")
    }

    @Test("metadata that would overwrite an entry's own fields is renamed")
    func reserved() {
        let fields = JournalLogHandler.fields(
            level: .info, message: "m", metadata: ["message": "x", "priority": "0"], file: "f", function: "g", line: 1)
        #expect(fields.filter { $0.hasPrefix("MESSAGE=") } == ["MESSAGE=m"])
        #expect(fields.contains("META_MESSAGE=x"))
        #expect(fields.contains("META_PRIORITY=0"))
        #expect(JournalLogHandler.fieldName(String(repeating: "k", count: 100)).count == 64)
    }

    @Test("levels map onto syslog priorities")
    func priorities() {
        #expect(Logger.Level.allCases.map(JournalLogHandler.priority) == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("stderr lines read certreload: level: message key=value")
    func stderrLine() {
        #expect(StderrLogHandler.line(identifier: "certreload", level: .error, message: "reload failed", metadata: [
            "target": "mail", "reason": "exit status 3",
        ]) == "certreload: error: reload failed reason=\"exit status 3\" target=mail")
        #expect(StderrLogHandler.line(identifier: "certreload", level: .info, message: "a\nb", metadata: [:])
            == "certreload: info: a\\nb")
    }

    @Test("journald when JOURNAL_STREAM or NOTIFY_SOCKET is set, else stderr")
    func backendChoice() {
        #expect(LoggingBackend.choose(environment: [:], journalAvailable: true) == .stderr)
        #expect(LoggingBackend.choose(environment: ["JOURNAL_STREAM": "8:1234"], journalAvailable: true) == .journal)
        #expect(LoggingBackend.choose(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"], journalAvailable: true) == .journal)
        #expect(LoggingBackend.choose(environment: ["JOURNAL_STREAM": ""], journalAvailable: true) == .stderr)
        // A systemd-like environment without journald: entries would vanish, so stderr.
        #expect(LoggingBackend.choose(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"], journalAvailable: false) == .stderr)
        #expect(LoggingBackend.journal.makeHandler(label: "x", logLevel: .debug) is JournalLogHandler)
        #expect(LoggingBackend.stderr.makeHandler(label: "x", logLevel: .debug).logLevel == .debug)
    }

    /// journald does not run where these tests run (no /run/systemd/journal/socket), so the
    /// entry cannot be read back. libsystemd then drops it silently and returns 0.
    @Test("sending an entry succeeds, with or without journald")
    func send() {
        let fields = JournalLogHandler.fields(
            level: .debug, message: "certreload test entry", metadata: ["certreload_test": "yes"], file: #fileID,
            function: #function, line: #line)
        #expect(JournalLogHandler.send(fields) >= 0)
        var logger = Logger(label: "test") { JournalLogHandler(label: $0, logLevel: .trace) }
        logger[metadataKey: "certreload_target"] = "mail"
        logger.debug("certreload test entry through the handler")
    }
}
