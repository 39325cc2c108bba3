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

    @Test("a metadata MESSAGE_ID of 32 hex digits is the entry's MESSAGE_ID; anything else stays META_")
    func messageID() {
        let id = "5b2f1e8c3a7d4e6f9b0c1d2e3f4a5b6c"
        let fields = JournalLogHandler.fields(
            level: .info, message: "reloaded", metadata: ["MESSAGE_ID": .string(id), "certreload_code": "reloaded"],
            file: "CertReload/Deploy/TargetPipeline.swift", function: "run()", line: 7)
        #expect(fields == [
            "MESSAGE=reloaded", "PRIORITY=6", "SYSLOG_IDENTIFIER=certreload", "MESSAGE_ID=\(id)",
            "CODE_FILE=CertReload/Deploy/TargetPipeline.swift", "CODE_LINE=7", "CODE_FUNC=run()",
            "CERTRELOAD_CODE=reloaded",
        ])
        let odd = JournalLogHandler.fields(
            level: .info, message: "m", metadata: ["message_id": "not-an-id"], file: "f", function: "g", line: 1)
        #expect(!odd.contains { $0.hasPrefix("MESSAGE_ID=") })
        #expect(odd.contains("META_MESSAGE_ID=not-an-id"))
    }

    @Test("CODE_FILE is never a build machine's absolute path")
    func codeFile() {
        let fields = JournalLogHandler.fields(
            level: .info, message: "m", metadata: [:], file: "/home/builder/src/Sources/CertReload/X.swift",
            function: "g", line: 1)
        #expect(fields.contains("CODE_FILE=X.swift"))
        #expect(JournalLogHandler.codeFile("CertReload/Watch/WatchService.swift") == "CertReload/Watch/WatchService.swift")
    }

    /// What journald would receive, read from the socket sd_journal_sendv writes to. The
    /// socket is bound at /run/systemd/journal/socket inside a mount namespace private to one
    /// thread (a tmpfs on /run), so neither a real journald nor another test sees it; that
    /// needs root (CAP_SYS_ADMIN), as the test suite runs.
    @Test("journald receives each field once, MESSAGE_ID under its own name, CODE_FILE relative",
          .enabled(if: geteuid() == 0, "needs root for a private mount namespace"))
    func receivedFields() throws {
        let id = "8d4c2b1a0f9e4d3c8b7a6f5e4d3c2b1a"
        let datagram = try #require(try JournalCapture.capture {
            var logger = Logger(label: "test") { JournalLogHandler(label: $0, logLevel: .trace) }
            logger[metadataKey: "certreload_target"] = "mail"
            logger.error("reload of mail failed", metadata: [
                "MESSAGE_ID": .string(id), "certreload_code": "reload-failed", "certreload_detail": "line 1\nline 2",
            ])
        })
        let fields = try JournalCapture.parse(datagram)
        let names = fields.map(\.name)
        #expect(names.count == Set(names).count, "a field appears twice: \(names)")
        let value = { (name: String) in fields.first { $0.name == name }?.value }
        #expect(value("MESSAGE") == "reload of mail failed")
        #expect(value("MESSAGE_ID") == id)
        #expect(value("META_MESSAGE_ID") == nil)
        #expect(value("PRIORITY") == "3")
        #expect(value("SYSLOG_IDENTIFIER") == "certreload")
        #expect(value("CERTRELOAD_TARGET") == "mail")
        #expect(value("CERTRELOAD_CODE") == "reload-failed")
        #expect(value("CERTRELOAD_DETAIL") == "line 1\nline 2")
        #expect(value("CODE_FILE") == "CertReloadTests/JournalLogHandlerTests.swift")  // #fileID: module/file
        #expect(value("CODE_FUNC") == "receivedFields()")
        #expect(Int(value("CODE_LINE") ?? "") != nil)
    }

    /// Without a journald socket libsystemd drops the entry silently and returns 0.
    @Test("sending an entry without journald succeeds")
    func send() {
        let fields = JournalLogHandler.fields(
            level: .debug, message: "certreload test entry", metadata: ["certreload_test": "yes"], file: #fileID,
            function: #function, line: #line)
        if access("/run/systemd/journal/socket", F_OK) != 0 { #expect(JournalLogHandler.send(fields) >= 0) }
    }
}

/// unshare(2): glibc declares it only under _GNU_SOURCE, which the Glibc module lacks.
@_silgen_name("unshare")
private func linux_unshare(_ flags: Int32) -> Int32

/// Binds a datagram socket where libsystemd sends journal entries, on a thread of its own
/// with a private mount namespace, runs `body` there and returns the one datagram it sent.
enum JournalCapture {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private final class Job: @unchecked Sendable {  // handed to one thread, read after join
        let body: () -> Void
        var result: Result<[UInt8]?, Failure> = .success(nil)
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func capture(_ body: @escaping () -> Void) throws -> [UInt8]? {
        let job = Job(body)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
            job.result = JournalCapture.run(job.body)
            return nil
        }, context)
        guard created == 0 else { throw Failure(description: "pthread_create: \(created)") }
        pthread_join(thread, nil)
        return try job.result.get()
    }

    private static func run(_ body: () -> Void) -> Result<[UInt8]?, Failure> {
        func fail(_ what: String) -> Result<[UInt8]?, Failure> {
            .failure(Failure(description: "\(what): \(String(cString: strerror(errno)))"))
        }
        // This thread only: its own mount namespace (CLONE_NEWNS implies CLONE_FS).
        guard linux_unshare(0x0002_0000 /* CLONE_NEWNS */) == 0 else { return fail("unshare(CLONE_NEWNS)") }
        guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else { return fail("mount --make-rprivate /") }
        guard mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") == 0 else { return fail("mount tmpfs /run") }
        mkdir("/run/systemd", 0o755)
        mkdir("/run/systemd/journal", 0o755)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return fail("socket") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array("/run/systemd/journal/socket".utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.map { UInt8(bitPattern: $0) })
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { return fail("bind /run/systemd/journal/socket") }
        body()
        // sendmsg on a unix datagram socket queues the datagram before it returns.
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n < 0 { return errno == EAGAIN ? .success(nil) : fail("recv") }
        return .success(Array(buffer.prefix(n)))
    }

    /// journald's native protocol: `NAME=value\n`, or for a value with a newline
    /// `NAME\n`, its length as 64-bit little-endian, the value, `\n`.
    static func parse(_ datagram: [UInt8]) throws -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        var rest = datagram[...]
        while !rest.isEmpty {
            guard let end = rest.firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }) else {
                throw Failure(description: "field without = or newline")
            }
            let name = String(decoding: rest[..<end], as: UTF8.self)
            if rest[end] == UInt8(ascii: "=") {
                guard let newline = rest[end...].firstIndex(of: UInt8(ascii: "\n")) else {
                    throw Failure(description: "\(name): no newline")
                }
                fields.append((name, String(decoding: rest[rest.index(after: end)..<newline], as: UTF8.self)))
                rest = rest[rest.index(after: newline)...]
            } else {
                let start = rest.index(after: end)
                guard rest.distance(from: start, to: rest.endIndex) >= 8 else { throw Failure(description: "\(name): short") }
                let length = rest[start..<start + 8].reversed().reduce(0) { $0 << 8 | Int($1) }
                let valueStart = start + 8
                guard rest.distance(from: valueStart, to: rest.endIndex) >= length + 1 else {
                    throw Failure(description: "\(name): value shorter than \(length)")
                }
                fields.append((name, String(decoding: rest[valueStart..<valueStart + length], as: UTF8.self)))
                rest = rest[(valueStart + length + 1)...]
            }
        }
        return fields
    }
}
