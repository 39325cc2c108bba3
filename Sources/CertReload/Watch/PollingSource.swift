import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The fallback when inotify cannot watch a lineage (the kernel's watch or instance limit):
/// every `interval` it looks at each such lineage's `live/NAME/` links, the archive files
/// they point at and both directories with `lstat`/`stat`, and yields the same
/// `WatchEvent`s inotify would (`.lineageChanged`, `.attributesChanged`), so the decision
/// loop does not know which source fired.
///
/// It runs on a Dispatch timer of its own (the uptime clock, which wall-clock jumps do not
/// move), never on the cooperative pool, and exists only while some lineage is polled: no
/// wake-ups otherwise. It notices a renewal up to `interval` later than inotify would, and it
/// does not see changes that undo themselves between two polls (nothing to act on then).
final class PollingSource: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is used only on `queue`.
    private let queue = DispatchQueue(label: "certreload.poll")
    private let continuation: AsyncStream<WatchEvent>.Continuation
    private var timer: (any DispatchSourceTimer)?
    private var interval: Duration
    private var certbotDirectory = CertbotDirectory("/etc/letsencrypt")
    /// The last look at each polled lineage.
    private var looks: [String: LineageLook] = [:]
    /// Called at each poll before looking (inotify tries again to add its missing watches).
    private let beforeEachPoll: @Sendable () -> Void

    init(
        interval: Duration, continuation: AsyncStream<WatchEvent>.Continuation,
        beforeEachPoll: @escaping @Sendable () -> Void = {}
    ) {
        self.interval = interval
        self.continuation = continuation
        self.beforeEachPoll = beforeEachPoll
    }

    /// Polls exactly these lineages from now on (none: the timer stops). A lineage newly
    /// polled is looked at once at once: it may have changed while it had no watch.
    func poll(certbotDirectory path: String, lineages names: Set<String>, interval: Duration) {
        queue.async { [self] in
            let directory = CertbotDirectory(path)
            let restart = directory.path != certbotDirectory.path || interval != self.interval || names.isEmpty
            certbotDirectory = directory
            self.interval = interval
            if restart { looks = [:] }
            for name in looks.keys where !names.contains(name) { looks[name] = nil }
            for name in names where looks[name] == nil {
                looks[name] = LineageLook(certbotDirectory: directory, lineage: name)
                continuation.yield(.lineageChanged(name))
            }
            if names.isEmpty || restart {
                timer?.cancel()
                timer = nil
            }
            guard !names.isEmpty, timer == nil else { return }
            let timer = DispatchSource.makeTimerSource(queue: queue)
            let nanoseconds = max(1, Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000))
            timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(100))
            // Holds `self` until the timer is cancelled (here on a restart, or by cancel()).
            timer.setEventHandler { [self] in tick() }
            timer.resume()
            self.timer = timer
        }
    }

    /// A new interval for the lineages polled now (a configuration reload).
    func change(interval: Duration) {
        let names = polled
        guard interval != queue.sync(execute: { self.interval }) else { return }
        poll(certbotDirectory: queue.sync { certbotDirectory.path }, lineages: names, interval: interval)
    }

    /// The lineages polled now (tests).
    var polled: Set<String> { queue.sync { Set(looks.keys) } }

    func cancel() {
        queue.sync {
            timer?.cancel()
            timer = nil
            looks = [:]
        }
    }

    deinit { timer?.cancel() }

    // MARK: - On `queue`

    private func tick() {
        beforeEachPoll()
        for (name, before) in looks {
            let now = LineageLook(certbotDirectory: certbotDirectory, lineage: name)
            guard now != before else { continue }
            looks[name] = now
            if now.content != before.content {
                continuation.yield(.lineageChanged(name))
            } else {
                continuation.yield(.attributesChanged(name))
            }
        }
    }
}

/// What polling compares between two looks at a lineage: for `live/NAME/` and
/// `archive/NAME/`, and for each of the four links and the file it ends at, whether it
/// exists, its inode, size, modification time and link text (`content`), and its mode and
/// owner (`attributes`: access changes).
struct LineageLook: Equatable {
    var content: [Int64] = []
    var links: [String] = []
    var attributes: [Int64] = []

    init(certbotDirectory: CertbotDirectory, lineage: String) {
        let live = Paths.join(certbotDirectory.liveDirectory, lineage)
        let archive = Paths.join(certbotDirectory.path, "archive/\(lineage)")
        note(live, follow: false)
        note(archive, follow: false)
        for kind in ["cert", "chain", "fullchain", "privkey"] {
            let link = Paths.join(live, "\(kind).pem")
            note(link, follow: false)
            links.append(LineageLook.linkText(link))
            note(link, follow: true)
        }
    }

    private mutating func note(_ path: String, follow: Bool) {
        var info = stat()
        guard (follow ? stat(path, &info) : lstat(path, &info)) == 0 else {
            content.append(-Int64(errno))
            return
        }
        content += [
            Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
        ]
        attributes += [Int64(info.st_mode), Int64(info.st_uid), Int64(info.st_gid)]
    }

    private static func linkText(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return "" }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
