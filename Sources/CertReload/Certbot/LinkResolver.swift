#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One file of a lineage after following every link to the real file.
public struct ResolvedFile: Sendable {
    public var kind: LineageFile
    /// The path the server opens (`live/NAME/cert.pem`).
    public var path: String
    /// Every path met on the way, the opened path first and the real file last, each with
    /// its directory part resolved physically.
    public var hops: [String]
    /// The archive version the first link names (`cert3.pem` → 3), nil outside certbot's naming.
    public var version: Int?
    /// The first link's target as written in the link.
    public var linkTarget: String?
    /// The file's bytes, when it could be read.
    public var contents: [UInt8]?
    /// stat of the real file, when it exists.
    public var info: stat?
    /// What stopped resolution or reading.
    public var problem: Problem?

    /// The real file at the end of the links.
    public var realPath: String { hops.last ?? path }
}

/// Follows certbot's links (relative, absolute, and `--reuse-key` chains) and reads each file.
///
/// One resolver serves one lineage. The physical paths of the directories it meets come from
/// `directories`, which the resolvers of one pass share (every lineage's links go through the
/// same `live/` and `archive/`). Not for use from several threads at once.
public final class LinkResolver {
    /// Linux gives up after 40 links (ELOOP); so does certreload.
    public static let maximumHops = 40

    private let directories: PhysicalDirectories

    public init(directories: PhysicalDirectories = PhysicalDirectories()) {
        self.directories = directories
    }

    /// Resolves and reads one file, never blocking and never following more than 40 links.
    public func resolve(_ kind: LineageFile, at path: String, readContents: Bool = true) -> ResolvedFile {
        var file = ResolvedFile(kind: kind, path: path, hops: [])
        var current = physical(path)
        var seen: Set<String> = []
        for hop in 0...LinkResolver.maximumHops {
            file.hops.append(current)
            var info = stat()
            if lstat(current, &info) != 0 {
                let code = errno
                if hop == 0 {
                    file.problem = Problem(
                        .error, .missing, path: path,
                        message: code == ENOENT
                            ? "\(path) does not exist"
                            : "cannot look at \(path): \(errnoDescription(code))",
                        fix: code == ENOENT ? missingFix(kind, path) : nil)
                } else {
                    let link = file.hops[hop - 1]
                    file.problem = Problem(
                        .error, .danglingLink, path: link,
                        message: "\(link) points at \(current), which "
                            + (code == ENOENT ? "does not exist" : "cannot be looked at: \(errnoDescription(code))")
                            + " (certbot may be writing this lineage right now, or its archive was removed)",
                        fix: "run `certbot renew --cert-name \(lineageName(path))` or restore the archive file")
                }
                return file
            }
            if (info.st_mode & S_IFMT) != S_IFLNK {
                file.info = info
                if readContents { read(into: &file) }
                return file
            }
            if seen.contains(current) || hop == LinkResolver.maximumHops {
                file.problem = Problem(
                    .error, .linkLoop, path: path,
                    message: "\(path) is a link loop: " + file.hops.prefix(6).joined(separator: " → ")
                        + (file.hops.count > 6 ? " → …" : ""),
                    fix: "point \(path) at the real file, e.g. `ln -sfn ../../archive/\(lineageName(path))/\(kind.rawValue)N.pem \(path)`")
                return file
            }
            seen.insert(current)
            guard let target = readLink(current) else {
                file.problem = Problem(
                    .error, .missing, path: current,
                    message: "cannot read the link \(current): \(errnoDescription(errno))")
                return file
            }
            if hop == 0 {
                file.linkTarget = target
                file.version = LinkResolver.version(of: Paths.base(of: target), kind: kind)
            }
            current = physical(Paths.join(Paths.directory(of: current), target))
        }
        return file
    }

    /// `cert12.pem` → 12 for kind `.cert`; nil for any other name.
    public static func version(of name: String, kind: LineageFile) -> Int? {
        let prefix = kind.rawValue
        guard name.hasPrefix(prefix), name.hasSuffix(".pem") else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(4)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
            return nil
        }
        return Int(digits)
    }

    private func read(into file: inout ResolvedFile) {
        let real = file.realPath
        switch SafeFile.read(real, followLinks: false) {
        case .success(let bytes):
            file.contents = bytes
        case .failure(.notRegularFile(let kind)):
            file.problem = Problem(
                .error, .notRegularFile, path: real,
                message: "\(real) is a \(kind), not a regular file; certreload does not read it",
                fix: "replace \(real) with the PEM file certbot wrote")
        case .failure(.tooLarge(let size, let limit)):
            file.problem = Problem(
                .error, .tooLarge, path: real,
                message: "\(real) is \(size) bytes; PEM files for TLS are a few KiB and certreload refuses anything over \(limit) bytes",
                fix: "check that \(real) is really a certificate or key file")
        case .failure(.missing):
            file.problem = Problem(
                .error, .danglingLink, path: file.path,
                message: "\(real) vanished while it was read (certbot may be writing this lineage right now)")
        case .failure(.failed(let call, let code)):
            if code == EACCES || code == EPERM {
                let me = Account.current()
                file.problem = Problem(
                    .error, .unreadable, path: real, user: me.name,
                    message: "certreload itself (running as \(me.name)) cannot read \(real), so it cannot validate it",
                    fix: "run certreload as root: `sudo certreload check …`")
            } else {
                file.problem = Problem(
                    .error, .unreadable, path: real,
                    message: "\(call) \(real) failed: \(errnoDescription(code))")
            }
        }
    }

    /// The path with its directory part resolved physically, as the kernel would walk it.
    private func physical(_ path: String) -> String {
        Paths.join(directories.physical(Paths.directory(of: path)), Paths.base(of: path))
    }

    private func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return buffer.withUnsafeBufferPointer { pointer in
            String(decoding: UnsafeRawBufferPointer(start: pointer.baseAddress, count: n), as: UTF8.self)
        }
    }

    private func lineageName(_ path: String) -> String {
        Paths.base(of: Paths.directory(of: path))
    }

    private func missingFix(_ kind: LineageFile, _ path: String) -> String {
        "restore the link: `ln -s ../../archive/\(lineageName(path))/\(kind.rawValue)N.pem \(path)` (N = newest version in archive/), or re-run certbot for this lineage"
    }
}

/// The physical path of each directory met in one pass (symlinks resolved, as the kernel walks
/// it), shared by the pass's resolvers on every thread. A directory is its parent's physical
/// path plus its own name unless it is itself a link, so once `live/` and `archive/` are known a
/// lineage's two directories cost one `lstat` each, where `realpath` would look at every
/// component again (at 10,000 lineages that was 180,000 `readlink` calls). Kept for one pass
/// only: a directory may become a link between two passes of the watch daemon.
public final class PhysicalDirectories: Sendable {
    private let known = Locked<[String: String]>([:])

    public init() {}

    /// The physical path of `directory`; a path that does not exist keeps its missing part as
    /// written (normalized), as before the walk could not go further.
    public func physical(_ directory: String) -> String {
        if let hit = known.withLock({ $0[directory] }) { return hit }
        let result = walk(directory)
        known.withLock { $0[directory] = result }
        return result
    }

    private func walk(_ directory: String) -> String {
        let name = Paths.base(of: directory)
        let parent = Paths.directory(of: directory)
        // The root, relative paths and odd shapes: the C library's walk.
        guard directory.hasPrefix("/"), directory != "/", parent != directory else {
            return Paths.realDirectory(directory) ?? Paths.normalize(directory)
        }
        let physicalParent = physical(parent)
        switch name {
        case "", ".": return physicalParent
        // The parent is free of links, so its lexical parent is its physical one.
        case "..": return Paths.directory(of: physicalParent)
        default: break
        }
        let candidate = Paths.join(physicalParent, name)
        var info = stat()
        guard lstat(candidate, &info) == 0 else { return candidate }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            return Paths.realDirectory(candidate) ?? Paths.normalize(candidate)
        }
        return candidate
    }
}
