import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// inotify on certbot's directories and the configuration file's directory, turned into
/// `WatchEvent`s. Directories are watched, never links: certbot replaces links by
/// unlink()+symlink(), and a watch on a link's target would follow the old file.
///
/// Watched: `<certbot-dir>` (live/ and archive/ appearing), `live/` and `archive/`
/// (lineages appearing and going), `live/NAME/` and `archive/NAME/` of every configured
/// lineage, and the configuration file's directory. A lineage directory deleted and
/// re-created is watched again when it reappears; IN_Q_OVERFLOW re-adds every watch and
/// asks for a full rescan.
///
/// When the kernel refuses a watch (ENOSPC: `fs.inotify.max_user_watches`), the lineages
/// left without one are reported through `coverage`, for the polling fallback;
/// `addMissingWatches()` tries again (after the limit was raised).
final class InotifySource: @unchecked Sendable {
    // @unchecked Sendable: `watches`, `lineages` and the descriptor are used only on `queue`
    // (the read handler, and `watch(lineages:)` via queue.sync); `fd` is immutable.
    private enum Place: Equatable {
        case certbot, live, archive, config
        case lineageLive(String), lineageArchive(String)
    }

    private let fd: Int32
    private let queue = DispatchQueue(label: "certreload.inotify")
    private let source: DispatchSourceRead
    private let continuation: AsyncStream<WatchEvent>.Continuation
    private var certbotDirectory: CertbotDirectory
    private let configDirectory: String?
    private let configName: String?
    private var watches: [Int32: Place] = [:]
    private var lineages: Set<String> = []
    /// Places the kernel refused to watch in the last pass (ENOSPC, ENOMEM), with the path.
    private var refused: [(place: Place, path: String)] = []
    /// What `coverage` was last told: the lineages without a watch.
    private var reportedUnwatched: Set<String> = []
    private var reportedRefusal = false
    private let coverage: @Sendable (InotifyCoverage) -> Void

    private static let directoryEvents: UInt32 =
        UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
    private static let lineageEvents: UInt32 =
        directoryEvents | UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DONT_FOLLOW)
    /// Written and closed, or renamed into place: never IN_CREATE, when the file is still empty.
    private static let configEvents: UInt32 = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR)

    /// `configPath` nil: do not watch a configuration file. `coverage` is told whenever the
    /// set of lineages the kernel refused to watch changes (on `queue`; it must not call back).
    init(
        certbotDirectory: String, configPath: String?, continuation: AsyncStream<WatchEvent>.Continuation,
        coverage: @escaping @Sendable (InotifyCoverage) -> Void = { _ in }
    ) throws(SystemError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw SystemError("inotify_init1") }
        self.fd = fd
        self.continuation = continuation
        self.coverage = coverage
        self.certbotDirectory = CertbotDirectory(certbotDirectory)
        let absoluteConfig = configPath.map(Paths.absolute)
        configDirectory = absoluteConfig.map(Paths.directory(of:))
        configName = absoluteConfig.map(Paths.base(of:))
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        // Holds `self` until cancel(): Dispatch drops a source's handlers once it is cancelled,
        // which ends the cycle. Not `[weak self]`: a weak reference gives the object a side
        // table that LeakSanitizer reports as leaked (it cannot follow the tagged pointer).
        source.setEventHandler { [self] in readEvents() }
        source.setCancelHandler { close(fd) }
        queue.sync { addWatches() }
        source.resume()
    }

    /// Follows exactly these lineages of this certbot directory from now on.
    func watch(certbotDirectory path: String, lineages names: some Sequence<String>) {
        let names = Set(names)
        let directory = CertbotDirectory(path)
        queue.sync {
            let moved = directory.path != certbotDirectory.path
            certbotDirectory = directory
            for (wd, place) in watches {
                switch place {
                case .lineageLive(let name), .lineageArchive(let name):
                    if moved || !names.contains(name) {
                        inotify_rm_watch(fd, wd)
                        watches[wd] = nil
                    }
                case .certbot, .live, .archive:
                    if moved {
                        inotify_rm_watch(fd, wd)
                        watches[wd] = nil
                    }
                case .config: continue
                }
            }
            lineages = names
            addWatches()
        }
    }

    /// Tries again to add every watch the kernel refused (the polling fallback calls this at
    /// each poll); a lineage that gets its watches back is looked at once.
    func addMissingWatches() {
        queue.async { [self] in
            guard !refused.isEmpty else { return }
            addWatches()
        }
    }

    /// Stops reading and closes the descriptor; the read handler lets go of this object. Every
    /// owner calls it (the handler keeps the source alive until then).
    func cancel() { source.cancel() }

    // MARK: - On `queue`

    /// Adds every watch that should exist; inotify returns the same descriptor for a
    /// directory already watched, so this is also the repair after an overflow.
    private func addWatches() {
        refused = []
        add(certbotDirectory.path, .certbot, InotifySource.directoryEvents)
        add(certbotDirectory.liveDirectory, .live, InotifySource.directoryEvents)
        add(Paths.join(certbotDirectory.path, "archive"), .archive, InotifySource.directoryEvents)
        if let configDirectory { add(configDirectory, .config, InotifySource.configEvents) }
        for name in lineages.sorted() { addLineage(name) }
        reportCoverage()
    }

    private func addLineage(_ name: String) {
        add(Paths.join(certbotDirectory.liveDirectory, name), .lineageLive(name), InotifySource.lineageEvents)
        add(Paths.join(certbotDirectory.path, "archive/\(name)"), .lineageArchive(name), InotifySource.lineageEvents)
    }

    /// A directory that does not exist yet is not an error: its parent's watch sees it appear.
    /// A refusal by the kernel's limit is remembered for the polling fallback.
    private func add(_ path: String, _ place: Place, _ mask: UInt32) {
        let wd = inotify_add_watch(fd, path, mask)
        let code = errno
        refused.removeAll { $0.place == place }
        if wd >= 0 {
            watches[wd] = place
        } else if code == ENOSPC || code == ENOMEM {
            refused.append((place, path))
        }
    }

    /// Tells `coverage` when the lineages without a watch changed. Without a watch on
    /// certbot's own directories no lineage would be seen coming back: then all are polled.
    private func reportCoverage() {
        var unwatched: Set<String> = []
        for (place, _) in refused {
            switch place {
            case .lineageLive(let name), .lineageArchive(let name): unwatched.insert(name)
            case .certbot, .live, .archive: unwatched.formUnion(lineages)
            case .config: continue
            }
        }
        guard unwatched != reportedUnwatched || !refused.isEmpty != reportedRefusal else { return }
        reportedRefusal = !refused.isEmpty
        // A lineage that has its watches again may have changed while it had none.
        for name in reportedUnwatched.subtracting(unwatched) { continuation.yield(.lineageChanged(name)) }
        reportedUnwatched = unwatched
        coverage(
            InotifyCoverage(
                unwatched: unwatched, refusedPaths: refused.map(\.path), inPlace: watches.count,
                needed: watches.count + refused.count))
    }

    private func readEvents() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let fd = self.fd
            guard case .success(let count) = valueOrErrno({ buffer.withUnsafeMutableBytes { SystemCall.read(fd, $0.baseAddress, $0.count) } }),
                count > 0
            else { return }
            var offset = 0
            buffer.withUnsafeBytes { raw in
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let wd = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameStart = offset + MemoryLayout<inotify_event>.size
                    var name = ""
                    if length > 0 {
                        let bytes = raw[nameStart..<(nameStart + length)]
                        name = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    handle(wd: wd, mask: mask, name: name)
                    offset = nameStart + length
                }
            }
        }
    }

    private func handle(wd: Int32, mask: UInt32, name: String) {
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            addWatches()
            continuation.yield(.rescan)
            return
        }
        guard let place = watches[wd] else { return }
        if mask & UInt32(IN_IGNORED) != 0 {
            // The directory went away (or was moved): forget the descriptor; the parent's
            // watch re-adds it when it comes back.
            watches[wd] = nil
            switch place {
            case .lineageLive(let lineage), .lineageArchive(let lineage): continuation.yield(.lineageChanged(lineage))
            case .live, .archive, .certbot: continuation.yield(.rescan)
            case .config: if let configDirectory { add(configDirectory, .config, InotifySource.configEvents) }
            }
            return
        }
        let appeared = mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0
        switch place {
        case .certbot:
            if name == "live" || name == "archive" {
                if appeared { addWatches() }
                continuation.yield(.rescan)
            }
        case .live, .archive:
            guard lineages.contains(name) else { return }
            if appeared {
                addLineage(name)
                reportCoverage()
            }
            continuation.yield(.lineageChanged(name))
        case .config:
            if name == configName { continuation.yield(.configurationChanged) }
        case .lineageLive(let lineage), .lineageArchive(let lineage):
            if mask & UInt32(IN_ATTRIB) != 0 {
                continuation.yield(.attributesChanged(lineage))
            } else {
                continuation.yield(.lineageChanged(lineage))
            }
        }
    }
}

/// Which lineages inotify could not watch (the kernel's watch limit), for the polling
/// fallback and the message naming the limit.
struct InotifyCoverage: Sendable, Equatable {
    /// Lineages without a watch on `live/NAME/` or `archive/NAME/`: polled instead.
    var unwatched: Set<String>
    /// The directories the kernel refused to watch.
    var refusedPaths: [String]
    /// Watches in place, and how many certreload needed.
    var inPlace: Int
    var needed: Int
}
