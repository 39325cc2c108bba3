#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a file could not be read safely.
public enum SafeReadError: Error, Sendable, Equatable {
    case missing
    case notRegularFile(kind: String)
    case tooLarge(size: Int64, limit: Int)
    case failed(call: String, errno: Int32)
}

/// Reads small regular files without ever blocking on a FIFO, a device or a socket.
public enum SafeFile {
    /// certbot's files are a few KiB; anything past this is refused.
    public static let sizeLimit = 1 << 20

    /// Linux's O_PATH (Glibc hides it behind _GNU_SOURCE, so Swift does not see it).
    static let pathOnly: Int32 = 0o10000000

    /// Reads a whole regular file of at most `limit` bytes.
    ///
    /// The file is opened with O_NONBLOCK and checked with fstat before any read, so a FIFO or
    /// device is reported, not waited on. `followLinks: false` refuses a final symlink
    /// (used once links were resolved, so a swap in between cannot redirect the read).
    public static func read(
        _ path: String, limit: Int = sizeLimit, followLinks: Bool = true
    ) -> Result<[UInt8], SafeReadError> {
        // The type first, through an O_PATH descriptor: opening a socket for reading fails
        // with ENXIO, and opening a device can act on it.
        let nameFlags = SafeFile.pathOnly | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW)
        let pathFD = open(path, nameFlags)
        if pathFD < 0 {
            let code = errno
            if code == ENOENT { return .failure(.missing) }
            return .failure(.failed(call: "open", errno: code))
        }
        var named = stat()
        let statted = fstat(pathFD, &named)
        let statErrno = errno
        close(pathFD)
        guard statted == 0 else { return .failure(.failed(call: "fstat", errno: statErrno)) }
        guard (named.st_mode & S_IFMT) == S_IFREG else {
            return .failure(.notRegularFile(kind: fileKind(named.st_mode)))
        }
        var flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        if !followLinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        if fd < 0 {
            let code = errno
            if code == ENOENT { return .failure(.missing) }
            return .failure(.failed(call: "open", errno: code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.failed(call: "fstat", errno: errno)) }
        // Swapped between the two opens: judge what was opened.
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(.notRegularFile(kind: fileKind(info.st_mode)))
        }
        guard info.st_size <= Int64(limit) else {
            return .failure(.tooLarge(size: Int64(info.st_size), limit: limit))
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var used = 0
        while true {
            if used == bytes.count {
                // The file grew while being read: accept up to the limit.
                guard bytes.count <= limit else {
                    return .failure(.tooLarge(size: Int64(bytes.count), limit: limit))
                }
                bytes.append(contentsOf: repeatElement(0, count: 4096))
            }
            let result = valueOrErrno {
                bytes.withUnsafeMutableBytes { buffer in SystemCall.read(fd, buffer.baseAddress! + used, buffer.count - used) }
            }
            let n: Int
            switch result {
            case .success(let count): n = count
            case .failure(let error): return .failure(.failed(call: "read", errno: error.rawValue))
            }
            if n == 0 { break }
            used += n
        }
        if used > limit { return .failure(.tooLarge(size: Int64(used), limit: limit)) }
        bytes.removeSubrange(used...)
        return .success(bytes)
    }

    /// A person's word for the type of file in `mode`.
    public static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "regular file"
        case S_IFDIR: return "directory"
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFLNK: return "symbolic link"
        default: return "special file"
        }
    }
}

/// Writing to file descriptors without Foundation.
public enum Descriptor {
    /// Writes all of `text`, retrying short writes and EINTR. On failure the errno is kept
    /// in the error; `path` only names the file in it.
    public static func writeAll(_ fd: Int32, _ text: String, path: String? = nil) throws(SystemError) {
        var bytes = Array(text.utf8)
        defer { bytes.removeAll() }
        var offset = 0
        while offset < bytes.count {
            let result = valueOrErrno { bytes.withUnsafeBytes { SystemCall.write(fd, $0.baseAddress! + offset, $0.count - offset) } }
            guard case .success(let n) = result else { throw SystemError("write", path: path) }
            offset += n
        }
    }
}
