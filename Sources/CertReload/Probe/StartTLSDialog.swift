/// The plaintext part of a STARTTLS connection, up to the point where TLS begins.
///
/// It sends only fixed commands (`EHLO certreload.invalid`, `a CAPABILITY`, `CAPA`, …):
/// nothing secret ever goes over the wire. It records every line the server says.
struct StartTLSConversation {
    /// Most lines accepted in one response (a multi-line greeting, a capability list).
    static let maximumResponseLines = 200

    let dialog: StartTLSDialog
    let socket: ProbeSocket
    let deadline: ProbeDeadline
    private var reader = LineReader()
    private(set) var transcript: [String] = []

    init(dialog: StartTLSDialog, socket: ProbeSocket, deadline: ProbeDeadline) {
        self.dialog = dialog
        self.socket = socket
        self.deadline = deadline
    }

    /// A failure of the dialog, before its transcript is attached.
    struct Failure: Error {
        var code: ProblemCode
        var message: String
    }

    /// Runs the dialog; on success the server is waiting for a TLS ClientHello.
    mutating func run() throws(Failure) {
        switch dialog {
        case .smtp: try smtp()
        case .imap: try imap()
        case .pop3: try pop3()
        }
        if !reader.buffered.isEmpty {
            // Bytes after the go-ahead would be read as if they came over TLS (CVE-2011-0411 style).
            throw Failure(
                code: .verifyHandshakeFailed,
                message: "the server sent \(reader.buffered.count) unexpected byte(s) after its STARTTLS go-ahead")
        }
    }

    // MARK: SMTP

    private mutating func smtp() throws(Failure) {
        let greeting = try smtpResponse(after: "connecting")
        guard greeting.code == 220 else {
            throw Failure(code: .starttlsRefused, message: "the server refused the SMTP session: \(ProbeText.quote(greeting.lines))")
        }
        try send("EHLO certreload.invalid")
        let ehlo = try smtpResponse(after: "EHLO")
        guard ehlo.code == 250 else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server did not accept EHLO, so it offers no STARTTLS: \(ProbeText.quote(ehlo.lines))")
        }
        let offered = ehlo.lines.contains { line in
            firstWord(String(line.dropFirst(4))) == "STARTTLS"
        }
        guard offered else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server's EHLO answer does not list STARTTLS: \(ProbeText.quote(ehlo.lines)); \(ProbeText.notOffered)")
        }
        try send("STARTTLS")
        let answer = try smtpResponse(after: "STARTTLS")
        guard answer.code == 220 else {
            throw Failure(code: .starttlsRefused, message: "the server answered STARTTLS with \(ProbeText.quote(answer.lines))")
        }
    }

    /// One SMTP reply: `250-first`, `250-second`, `250 last`.
    private mutating func smtpResponse(after step: String) throws(Failure) -> (code: Int, lines: [String]) {
        var lines: [String] = []
        while lines.count < StartTLSConversation.maximumResponseLines {
            let line = try readLine(after: step)
            lines.append(line)
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, bytes[0..<3].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let code = Int(String(decoding: bytes[0..<3], as: UTF8.self))
            else {
                throw Failure(
                    code: .verifyHandshakeFailed,
                    message: "after \(step) the server sent something that is not an SMTP reply: \(ProbeText.quote(lines))")
            }
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return (code, lines) }
            guard bytes[3] == UInt8(ascii: "-") else {
                throw Failure(
                    code: .verifyHandshakeFailed,
                    message: "after \(step) the server sent a malformed SMTP reply: \(ProbeText.quote(lines))")
            }
        }
        throw Failure(code: .verifyHandshakeFailed, message: "after \(step) the server's reply did not end")
    }

    // MARK: IMAP

    private mutating func imap() throws(Failure) {
        let greeting = try readLine(after: "connecting")
        let upper = greeting.uppercased()
        guard upper.hasPrefix("* OK") || upper.hasPrefix("* PREAUTH") else {
            throw Failure(code: .starttlsRefused, message: "the server refused the IMAP session: \(ProbeText.quote([greeting]))")
        }
        try send("a CAPABILITY")
        let capability = try imapResponse(tag: "a", after: "CAPABILITY")
        guard capability.ok else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server did not answer CAPABILITY: \(ProbeText.quote(capability.lines))")
        }
        let offered = capability.lines.contains { line in
            let words = line.uppercased().split(separator: " ")
            return words.count >= 2 && words[0] == "*" && words[1] == "CAPABILITY" && words.contains("STARTTLS")
        }
        guard offered else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server's CAPABILITY answer does not list STARTTLS: \(ProbeText.quote(capability.lines)); \(ProbeText.notOffered)")
        }
        try send("b STARTTLS")
        let answer = try imapResponse(tag: "b", after: "STARTTLS")
        guard answer.ok else {
            throw Failure(code: .starttlsRefused, message: "the server answered STARTTLS with \(ProbeText.quote(answer.lines))")
        }
    }

    /// Untagged lines up to and including the tagged completion; `ok` when it is `tag OK`.
    private mutating func imapResponse(tag: String, after step: String) throws(Failure) -> (ok: Bool, lines: [String]) {
        var lines: [String] = []
        while lines.count < StartTLSConversation.maximumResponseLines {
            let line = try readLine(after: step)
            lines.append(line)
            let words = line.split(separator: " ", maxSplits: 2)
            if words.first.map(String.init) == tag {
                return (words.count >= 2 && words[1].uppercased() == "OK", lines)
            }
            guard line.hasPrefix("*") || line.hasPrefix("+") else {
                throw Failure(
                    code: .verifyHandshakeFailed,
                    message: "after \(step) the server sent something that is not an IMAP response: \(ProbeText.quote(lines))")
            }
        }
        throw Failure(code: .verifyHandshakeFailed, message: "after \(step) the server's response did not end")
    }

    // MARK: POP3

    private mutating func pop3() throws(Failure) {
        let greeting = try readLine(after: "connecting")
        guard greeting.hasPrefix("+OK") else {
            throw Failure(code: .starttlsRefused, message: "the server refused the POP3 session: \(ProbeText.quote([greeting]))")
        }
        try send("CAPA")
        let first = try readLine(after: "CAPA")
        guard first.hasPrefix("+OK") else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server does not support CAPA, so it offers no STLS: \(ProbeText.quote([first]))")
        }
        var lines = [first]
        var offered = false
        while true {
            guard lines.count < StartTLSConversation.maximumResponseLines else {
                throw Failure(code: .verifyHandshakeFailed, message: "after CAPA the server's list did not end")
            }
            let line = try readLine(after: "CAPA")
            lines.append(line)
            if line == "." { break }
            if firstWord(line) == "STLS" { offered = true }
        }
        guard offered else {
            throw Failure(
                code: .starttlsNotOffered,
                message: "the server's CAPA answer does not list STLS: \(ProbeText.quote(lines)); \(ProbeText.notOffered)")
        }
        try send("STLS")
        let answer = try readLine(after: "STLS")
        guard answer.hasPrefix("+OK") else {
            throw Failure(code: .starttlsRefused, message: "the server answered STLS with \(ProbeText.quote([answer]))")
        }
    }

    // MARK: Lines

    private mutating func readLine(after step: String) throws(Failure) -> String {
        switch reader.readLine(from: socket, deadline: deadline) {
        case .success(let line):
            transcript.append(line)
            return line
        case .failure(let failure):
            let what: String
            switch failure.kind {
            case .timedOut:
                what = step == "connecting"
                    ? "the server sent no \(dialog.rawValue.uppercased()) greeting in time (if this port expects TLS at once, use the implicit-TLS scheme such as smtps://, imaps:// or pop3s://)"
                    : "the server did not answer \(step) in time"
            case .closed:
                what = "\(failure.detail) after \(step == "connecting" ? "the connection was opened" : step)"
            case .system:
                what = "after \(step): \(failure.detail)"
            }
            let said = transcript.isEmpty ? "" : " (it had said: \(ProbeText.quote(transcript)))"
            throw Failure(code: .verifyHandshakeFailed, message: what + said)
        }
    }

    private mutating func send(_ command: String) throws(Failure) {
        if case .failure(let failure) = socket.send(Array((command + "\r\n").utf8), deadline: deadline) {
            throw Failure(code: .verifyHandshakeFailed, message: "sending \(command): \(failure.detail)")
        }
    }

    private func firstWord(_ text: String) -> String {
        String(text.split(separator: " ", maxSplits: 1).first ?? "").uppercased()
    }
}

/// Wording shared by the probe's messages.
enum ProbeText {
    static let notOffered =
        "TLS is not enabled on that listener (Stalwart offers STARTTLS whenever the listener's TLS switch is on, "
        + "useTls in 0.16/1.0 or server.listener.ID.tls.enable in 0.15, whatever its certificates; Postfix and others "
        + "also stop offering it when they cannot load a certificate)"
}

extension ProbeText {
    /// Server lines for a message: control characters escaped, long answers shortened.
    static func quote(_ lines: [String]) -> String {
        let shown = lines.count > 12 ? Array(lines.prefix(11)) + ["… (\(lines.count - 11) more lines)"] : lines
        return shown.map { "\"" + ProbeText.printable($0, limit: 200) + "\"" }.joined(separator: " / ")
    }
}

extension ProbeText {
    /// A server-supplied string made safe for a terminal or a log line.
    static func printable(_ text: String, limit: Int) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            if scalar.value < 0x20 || scalar.value == 0x7f || (scalar.value >= 0x80 && scalar.value < 0xa0) {
                out += "\\x" + String(scalar.value, radix: 16)
            } else if scalar == "\"" || scalar == "\\" {
                out += "\\" + String(scalar)
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}
