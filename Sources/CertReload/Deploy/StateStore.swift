#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What certreload last did for one target: the certificate it deployed and the one it
/// saw the server serve.
public struct TargetState: Sendable, Equatable {
    public var target: String
    public var deployedSHA256: String?
    public var deployedAt: Int64?
    public var verifiedSHA256: String?
    public var verifiedAt: Int64?

    public init(target: String) {
        self.target = target
    }
}

/// Per-target state files in the state directory (`/var/lib/certreload/<target>.state`),
/// written atomically: temporary file, fsync, rename, fsync of the directory.
///
/// The format is `key = value` lines so a person can read it with `cat`.
public struct StateStore: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func path(for target: String) -> String {
        Paths.join(directory, "\(target).state")
    }

    /// The recorded state, or an empty one when nothing was recorded yet.
    public func load(_ target: String) -> TargetState {
        var state = TargetState(target: target)
        guard case .success(let bytes) = SafeFile.read(path(for: target), limit: 64 * 1024) else { return state }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
            guard parts.count == 2, !line.hasPrefix("#") else { continue }
            switch parts[0] {
            case "deployed-sha256": state.deployedSHA256 = parts[1]
            case "deployed-at": state.deployedAt = Int64(parts[1])
            case "verified-sha256": state.verifiedSHA256 = parts[1]
            case "verified-at": state.verifiedAt = Int64(parts[1])
            default: continue
            }
        }
        return state
    }

    /// The problem to report when `save` failed: `state-unwritable`, with the cause the
    /// kernel gave and a fix for that cause (the server was reloaded all the same).
    public func unwritable(_ error: SystemError, target: String) -> Problem {
        let file = path(for: target)
        var info = stat()
        let exists = stat(directory, &info) == 0
        let fix: String
        switch error.code {
        case _ where exists && (info.st_mode & S_IFMT) != S_IFDIR:
            fix = "\(directory) is a \(SafeFile.fileKind(info.st_mode)), not a directory: move it away, then `install -d -m 0750 \(directory)` (or set state-dir in the configuration)"
        case ENOENT, ENOTDIR:
            fix = "create the state directory: install -d -m 0750 \(directory)   # or set state-dir in the configuration"
        case EROFS:
            fix = "\(directory) is on a read-only file system: set state-dir to a writable directory (with systemd: StateDirectory=certreload, or ReadWritePaths=\(directory))"
        case ENOSPC, EDQUOT:
            fix = "free space on the file system holding \(directory) (`df \(directory)`)"
        case EACCES, EPERM:
            fix = "let certreload's user (\(Account.current().name)) write \(directory): chown \(Account.current().name) \(directory) && chmod u+rwx \(directory)"
        default:
            fix = "check \(directory) (`ls -ld \(directory)`, `df \(directory)`)"
        }
        return Problem(
            .warning, .stateUnwritable, path: directory, user: Account.current().name,
            message: "could not record the deployed certificate in \(file) as \(Account.current().name): \(error). The server was reloaded, but the record on disk still names the previous certificate: the next `certreload deploy` or `reload` reloads again (after first probing the verify URLs when there are any); `certreload watch` keeps the record in memory and writes it again, with backoff, until the directory takes it",
            fix: fix)
    }

    /// Writes the state atomically; creates the directory (0750) if needed.
    public func save(_ state: TargetState) throws(SystemError) {
        if mkdir(directory, 0o750) != 0 && errno != EEXIST { throw SystemError("mkdir", path: directory) }
        var text = "# certreload state for target \(state.target); written by certreload, do not edit\n"
        if let value = state.deployedSHA256 { text += "deployed-sha256 = \(value)\n" }
        if let value = state.deployedAt { text += "deployed-at = \(value)\n" }
        if let value = state.verifiedSHA256 { text += "verified-sha256 = \(value)\n" }
        if let value = state.verifiedAt { text += "verified-at = \(value)\n" }
        let final = path(for: state.target)
        let temporary = final + ".tmp.\(getpid())"
        removeStaleTemporaries(of: final)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw SystemError("open", path: temporary) }
        do {
            try Descriptor.writeAll(fd, text, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard fsync(fd) == 0 else {
            let error = SystemError("fsync", path: temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, final) == 0 else {
            let error = SystemError("rename", path: final)
            unlink(temporary)
            throw error
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

extension StateStore {
    /// Removes `<target>.state.tmp.<pid>` files left by a certreload that was killed between
    /// creating and renaming its temporary file, when that pid no longer runs.
    func removeStaleTemporaries(of final: String) {
        let prefix = Paths.base(of: final) + ".tmp."
        guard let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = direntName(entry)
            guard name.hasPrefix(prefix), let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(Paths.join(directory, name)) }
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return String(slice)
    }
}
