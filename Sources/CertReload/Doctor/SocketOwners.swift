#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listening TCP socket from `/proc/net/tcp` or `/proc/net/tcp6`.
public struct ListeningSocket: Sendable, Equatable {
    /// The bound address as text ("0.0.0.0", "127.0.0.1", "::").
    public var address: String
    public var port: UInt16
    /// The uid that created the socket.
    public var uid: uid_t
    public var inode: UInt64

    public init(address: String, port: UInt16, uid: uid_t, inode: UInt64) {
        self.address = address
        self.port = port
        self.uid = uid
        self.inode = inode
    }

    public var isWildcard: Bool { address == "0.0.0.0" || address == "::" }
}

/// Who listens on a port: the socket's account and the processes holding it.
public struct SocketOwner: Sendable, Equatable {
    public var uid: uid_t
    public var user: String
    /// The master of the holders: the one whose parent holds no copy of the socket (a pre-forking
    /// server's children inherit the listening socket from it); the lowest such pid if several.
    public var pid: Int32?
    /// `/proc/PID/comm` of that process.
    public var process: String?
    /// Every pid holding the socket.
    public var pids: [Int32]

    /// "stalwart (pid 812) running as stalwart"
    public var summary: String {
        if let process, let pid { return "\(process) (pid \(pid)) running as \(user)" }
        return "a process of \(user) (uid \(uid); no process found holding the socket)"
    }
}

/// Finds listening sockets and their processes from /proc (as root, every process is visible).
public enum SocketOwners {
    /// Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`; only LISTEN (state 0A) rows.
    public static func parse(_ text: String) -> [ListeningSocket] {
        var sockets: [ListeningSocket] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 10, fields[3] == "0A" else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = UInt16(local[1], radix: 16),
                let uid = uid_t(fields[7]), let inode = UInt64(fields[9]),
                let address = hexAddress(String(local[0]))
            else { continue }
            sockets.append(ListeningSocket(address: address, port: port, uid: uid, inode: inode))
        }
        return sockets
    }

    /// The kernel prints addresses as host-order 32-bit words in hex.
    static func hexAddress(_ hex: String) -> String? {
        let bytes = Array(hex.utf8)
        guard bytes.count == 8 || bytes.count == 32 else { return nil }
        var raw: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let word = UInt32(String(decoding: bytes[index..<index + 8], as: UTF8.self), radix: 16) else { return nil }
            let little = word.littleEndian
            raw += [UInt8(little & 0xff), UInt8((little >> 8) & 0xff), UInt8((little >> 16) & 0xff), UInt8(little >> 24)]
            index += 8
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let family = raw.count == 4 ? AF_INET : AF_INET6
        let ok = raw.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) } != nil
        guard ok else { return nil }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // An IPv4 address in a v6 socket ("::ffff:127.0.0.1") is matched as IPv4.
        return text.hasPrefix("::ffff:") && text.contains(".") ? String(text.dropFirst(7)) : text
    }

    /// Every listening socket of this machine.
    public static func listening() -> [ListeningSocket] {
        ["/proc/net/tcp", "/proc/net/tcp6"].flatMap { path -> [ListeningSocket] in
            guard case .success(let bytes) = SafeFile.read(path, limit: 16 << 20) else { return [] }
            return parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The owners of the sockets listening on `port` that a connection to `dialled` reaches.
    /// `parent` gives a process's parent pid (from /proc unless a test says otherwise).
    public static func owner(
        port: UInt16, dialled: String?, sockets: [ListeningSocket], holders: [UInt64: [Int32]],
        parent: (Int32) -> Int32? = parentPID
    ) -> SocketOwner? {
        let local = localAddresses()
        let candidates = sockets.filter { socket in
            guard socket.port == port else { return false }
            guard let dialled else { return true }
            if socket.address == dialled { return true }
            return socket.isWildcard && (local.contains(dialled) || dialled.hasPrefix("127.") || dialled == "::1")
        }
        guard let socket = candidates.first(where: { !(holders[$0.inode] ?? []).isEmpty }) ?? candidates.first else { return nil }
        let pids = (holders[socket.inode] ?? []).sorted()
        let pid = master(of: pids, parent: parent)
        return SocketOwner(
            uid: socket.uid, user: Account.userName(socket.uid), pid: pid,
            process: pid.flatMap(processName), pids: pids)
    }

    /// socket inode → pids holding it, from `/proc/*/fd` (only the inodes asked for).
    public static func holders(of inodes: Set<UInt64>) -> [UInt64: [Int32]] {
        var result: [UInt64: [Int32]] = [:]
        guard !inodes.isEmpty, let proc = opendir("/proc") else { return result }
        defer { closedir(proc) }
        var buffer = [CChar](repeating: 0, count: 128)
        while let entry = readdir(proc) {
            let name = direntName(entry)
            guard let pid = Int32(name) else { continue }
            let fdDirectory = "/proc/\(pid)/fd"
            guard let fds = opendir(fdDirectory) else { continue }
            while let fdEntry = readdir(fds) {
                let fdName = direntName(fdEntry)
                guard fdName.first?.isNumber == true else { continue }
                let count = readlink("\(fdDirectory)/\(fdName)", &buffer, buffer.count - 1)
                guard count > 9 else { continue }
                let target = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()), inodes.contains(inode) else { continue }
                if !(result[inode]?.contains(pid) ?? false) { result[inode, default: []].append(pid) }
            }
            closedir(fds)
        }
        return result
    }

    /// The holder whose parent is not a holder: Postfix's `master` while `smtpd` children hold the
    /// inherited socket too. Not the lowest pid: pids wrap (pid_max is 32768 on many machines), so
    /// a child can have a lower pid than its master.
    static func master(of pids: [Int32], parent: (Int32) -> Int32?) -> Int32? {
        let holding = Set(pids)
        return pids.first { pid in parent(pid).map { !holding.contains($0) } ?? true } ?? pids.first
    }

    /// The parent pid from `/proc/PID/stat`: the fourth field, read after the last ')' because the
    /// process name in parentheses may itself hold spaces and parentheses.
    public static func parentPID(_ pid: Int32) -> Int32? {
        guard case .success(let bytes) = SafeFile.read("/proc/\(pid)/stat", limit: 4096) else { return nil }
        return parentPID(stat: bytes)
    }

    static func parentPID(stat bytes: [UInt8]) -> Int32? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2 else { return nil }
        return Int32(String(decoding: fields[1], as: UTF8.self))
    }

    static func processName(_ pid: Int32) -> String? {
        guard case .success(let bytes) = SafeFile.read("/proc/\(pid)/comm", limit: 256) else { return nil }
        let name = String(decoding: bytes, as: UTF8.self).trimmingSuffix("\n")
        return name.isEmpty ? nil : name
    }

    /// Supplementary groups the running process has (`Groups:` in /proc/PID/status).
    public static func processGroups(_ pid: Int32) -> [gid_t]? {
        guard case .success(let bytes) = SafeFile.read("/proc/\(pid)/status", limit: 64 * 1024) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Groups:") {
            return line.dropFirst(7).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { gid_t($0) }
        }
        return nil
    }

    static func localAddresses() -> Set<String> {
        var result: Set<String> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return result }
        defer { freeifaddrs(list) }
        var entry = list
        var buffer = [CChar](repeating: 0, count: 64)
        while let current = entry {
            entry = current.pointee.ifa_next
            guard let address = current.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            if family == AF_INET {
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    if inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)) != nil { result.insert(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
                }
            } else if family == AF_INET6 {
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var addr = sin6.pointee.sin6_addr
                    if inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)) != nil { result.insert(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
                }
            }
        }
        return result
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
