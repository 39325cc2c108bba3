#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An errno value from a failed system call.
struct Errno: Error, Equatable, CustomStringConvertible {
    var rawValue: Int32

    /// The calling thread's errno now.
    static var current: Errno { Errno(rawValue: errno) }

    var description: String { String(cString: strerror(rawValue)) }
}

/// The one funnel for system calls (after swift-system's `valueOrErrno(retryOnInterrupt:)`):
/// runs `call`, repeating it while it fails with EINTR, and returns its result or its errno.
/// A call "fails" when it returns -1, as POSIX calls do.
func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> I) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let error = Errno.current
        if retryOnInterrupt && error.rawValue == EINTR { continue }
        return .failure(error)
    }
}

/// The C library's calls whose names Swift types shadow (`read`, `write`, `send`, `connect`),
/// named once here for Glibc and Musl alike.
enum SystemCall {
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Musl.read(fd, buffer, count)
        #endif
    }

    static func write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, buffer, count)
        #else
        Musl.write(fd, buffer, count)
        #endif
    }

    static func send(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
        #if canImport(Glibc)
        Glibc.send(fd, buffer, count, flags)
        #else
        Musl.send(fd, buffer, count, flags)
        #endif
    }

    static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
        #if canImport(Glibc)
        Glibc.connect(fd, address, length)
        #else
        Musl.connect(fd, address, length)
        #endif
    }
}
