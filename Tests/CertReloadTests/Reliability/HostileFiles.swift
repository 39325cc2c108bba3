@testable import CertReload
import CertReloadDemo
import Glibc

/// Puts non-regular files where a PEM file should be, for the corpus and the access tests.
enum HostileFiles {
    /// Binds a UNIX socket at `path` and closes it (the socket file stays).
    static func makeSocket(_ path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", path: path) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SystemError("bind", path: path, code: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw SystemError("bind", path: path) }
    }

    static func makeFIFO(_ path: String) throws {
        guard mkfifo(path, 0o644) == 0 else { throw SystemError("mkfifo", path: path) }
    }

    /// Replaces `path` (a file or link) by what `make` creates there.
    static func replace(_ path: String, with make: (String) throws -> Void) throws {
        unlink(path)
        try make(path)
    }
}

/// Children of this process, from /proc (the probe child must not outlive a call).
func childProcessCount() -> Int {
    let me = getpid()
    var count = 0
    guard let dir = opendir("/proc/\(me)/task") else { return 0 }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = direntName(entry)
        guard name.first?.isNumber == true else { continue }
        if case .success(let bytes) = SafeFile.read("/proc/\(me)/task/\(name)/children", limit: 1 << 16) {
            count += String(decoding: bytes, as: UTF8.self).split(separator: " ").count
        }
    }
    return count
}

/// Open file descriptors of this process.
func openDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        if direntName(entry).first != "." { count += 1 }  // not "." or ".."
    }
    return count - 1  // the directory stream's own descriptor
}
