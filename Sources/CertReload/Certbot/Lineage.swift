#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The four files certbot keeps in every `live/NAME/` directory.
public enum LineageFile: String, Sendable, CaseIterable, Comparable {
    case cert, chain, fullchain, privkey

    /// The link's name in `live/NAME/`.
    public var linkName: String { rawValue + ".pem" }

    public static func < (lhs: LineageFile, rhs: LineageFile) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where a lineage's files are: a certbot `live/NAME` directory, or explicit paths.
public struct LineageSource: Sendable, Equatable {
    public var name: String
    /// The `live/NAME` directory, or the certificate's directory for explicit files.
    public var path: String
    /// The path the server opens for each file (links, for certbot's layout).
    public var files: [LineageFile: String]
    /// Whether this is certbot's layout (four links, versioned archive files).
    public var isCertbot: Bool

    /// A certbot lineage at `live/NAME`.
    public static func certbot(liveDirectory: String) -> LineageSource {
        let directory = Paths.absolute(liveDirectory)
        var files: [LineageFile: String] = [:]
        for file in LineageFile.allCases {
            files[file] = Paths.join(directory, file.linkName)
        }
        return LineageSource(
            name: Paths.base(of: directory), path: directory, files: files, isCertbot: true)
    }

    /// A certificate and key outside certbot's layout (acme.sh, lego, hand-made).
    public static func explicit(cert: String, key: String, chain: String?) -> LineageSource {
        var files: [LineageFile: String] = [
            .cert: Paths.absolute(cert), .privkey: Paths.absolute(key),
        ]
        if let chain { files[.chain] = Paths.absolute(chain) }
        return LineageSource(
            name: Paths.base(of: files[.cert]!), path: Paths.directory(of: files[.cert]!),
            files: files, isCertbot: false)
    }
}

/// A certbot configuration directory (`/etc/letsencrypt` by default).
public struct CertbotDirectory: Sendable {
    public var path: String

    public init(_ path: String) {
        self.path = Paths.absolute(path)
    }

    public var liveDirectory: String { Paths.join(path, "live") }

    /// Refuses a certbot directory that does not exist (a usage error, exit status 2).
    public func requireExists() throws(UsageError) {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw UsageError(
                "certbot directory \(path) does not exist or is not a directory",
                fix: "pass the directory certbot was run with: `--certbot-dir DIR` or CERTRELOAD_CERTBOT_DIR=DIR")
        }
    }

    /// Every lineage directory under `live/`, sorted by name (README and dot files skipped).
    public func lineages() throws(UsageError) -> [LineageSource] {
        try requireExists()
        guard let dir = opendir(liveDirectory) else {
            let code = errno
            if code == ENOENT { return [] }
            throw UsageError(
                "cannot list \(liveDirectory): \(errnoDescription(code))",
                fix: code == EACCES ? "run certreload as root (certbot keeps live/ at 0700 root)" : nil)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = direntName(entry)
            if name.hasPrefix(".") || name == "README" { continue }
            // The entry's type from readdir when the file system gives it; stat for links
            // (a linked lineage directory counts) and file systems that do not.
            let type = entry.pointee.d_type
            if type != UInt8(DT_DIR) {
                guard type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) else { continue }
                var entryInfo = stat()
                let full = Paths.join(liveDirectory, name)
                guard stat(full, &entryInfo) == 0, (entryInfo.st_mode & S_IFMT) == S_IFDIR else {
                    continue
                }
            }
            names.append(name)
        }
        return names.sorted().map { LineageSource.certbot(liveDirectory: Paths.join(liveDirectory, $0)) }
    }

    /// A lineage by name or by the path of its `live/NAME` directory.
    public func lineage(_ nameOrPath: String) throws(UsageError) -> LineageSource {
        let base = Paths.base(of: nameOrPath)
        if base == "." || base == ".." || nameOrPath.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw UsageError(
                "'\(ConfigError.escapingControls(nameOrPath))' is not a lineage: give its name as `certbot certificates` shows it, or its live/NAME directory",
                fix: "certreload check --certbot-dir \(path)   # lists every lineage")
        }
        let candidate =
            nameOrPath.contains("/") ? Paths.absolute(nameOrPath) : Paths.join(liveDirectory, nameOrPath)
        var info = stat()
        guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            let known = (try? lineages().map(\.name)) ?? []
            throw UsageError(
                "unknown lineage '\(nameOrPath)': \(candidate) is not a directory",
                fix: known.isEmpty
                    ? "check --certbot-dir (now \(path)); `certbot certificates` lists lineages"
                    : "known lineages: \(known.joined(separator: ", "))")
        }
        return .certbot(liveDirectory: candidate)
    }
}
