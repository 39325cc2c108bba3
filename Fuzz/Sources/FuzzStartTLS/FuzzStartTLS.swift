@testable import CertReload
import FuzzDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The STARTTLS dialogs (SMTP, IMAP, POP3) against whatever a server says: the first byte
/// picks the dialog, the rest is the server's side of a socketpair that ends with the input.
/// Beyond not crashing, every message must stay one bounded line of printable text: the
/// server's words reach the journal and a terminal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let dialog: StartTLSDialog = [.smtp, .imap, .pop3][Int(data[0]) % 3]
    var fds: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
        fatalError("socketpair: errno \(errno)")
    }
    defer { close(fds[1]) }
    // The server's words, then end of stream. A write the buffer cannot take cuts the input short.
    var offset = 1
    while offset < size {
        let written = write(fds[1], data + offset, size - offset)
        if written <= 0 { break }
        offset += written
    }
    shutdown(fds[1], Int32(SHUT_WR))

    var conversation = StartTLSConversation(
        dialog: dialog, socket: ProbeSocket.adopting(fds[0], peer: "fuzz"), deadline: ProbeDeadline(secondsFromNow: 5))
    do {
        try conversation.run()
    } catch {
        let bytes = Array(error.message.utf8)
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) { fatalError("a control character reached the message: \(error.message.debugDescription)") }
        if bytes.count > 16_384 { fatalError("a \(bytes.count)-byte message") }
    }
    return 0
}

@_cdecl("FuzzStartTLS_main")
func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }
