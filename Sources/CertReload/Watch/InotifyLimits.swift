#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kernel's inotify limits and the words for reaching one: which sysctl, its value now,
/// how many certreload needed, and the fix to paste.
///
/// Both limits count per user and, since Linux 5.11, per user namespace: the limit in effect
/// is the smaller of `fs.inotify.max_user_*` (the host's) and `user.max_inotify_*` of the
/// namespace certreload runs in. It does not count what other programs of the same user hold.
public enum InotifyLimits {
    public enum Kind: Sendable {
        /// `inotify_add_watch` failed with ENOSPC.
        case watches
        /// `inotify_init1` failed with EMFILE.
        case instances

        public var sysctl: String { self == .watches ? "fs.inotify.max_user_watches" : "fs.inotify.max_user_instances" }
        var namespaceSysctl: String { self == .watches ? "user.max_inotify_watches" : "user.max_inotify_instances" }
        public var code: String { self == .watches ? "inotify-watch-limit" : "inotify-instance-limit" }
    }

    /// The value of a sysctl (`fs.inotify.max_user_watches`), read from /proc/sys; nil when unreadable.
    public static func value(_ sysctl: String) -> Int? {
        // /proc/sys files report size 0 (SafeFile would read nothing): read up to 64 bytes.
        let path = "/proc/sys/" + sysctl.split(separator: ".").joined(separator: "/")
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { SystemCall.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer.prefix(count), as: UTF8.self).trimmingSpacesAndNewlines)
    }

    /// The limit in effect and the sysctl that sets it: the host's, or this user namespace's
    /// when that is lower.
    public static func effective(_ kind: Kind) -> (sysctl: String, value: Int?, host: Int?) {
        let host = value(kind.sysctl)
        if let namespace = value(kind.namespaceSysctl), namespace < (host ?? Int.max) {
            return (kind.namespaceSysctl, namespace, host)
        }
        return (kind.sysctl, host, host)
    }

    /// A value to suggest: at least double the current one and room for what was needed.
    static func suggested(current: Int?, needed: Int) -> Int {
        guard let current else { return max(8192, needed * 2) }
        return max(current * 2, current + needed, 8192)
    }

    /// The message for the watch limit: the path that could not be watched, the user, the
    /// sysctl and its value, how many watches were needed, what certreload does instead, and
    /// the fix (sysctl now, a sysctl.d line for good).
    /// `limit` is the limit in effect (default: read from /proc/sys now).
    public static func watchLimitMessage(
        path: String, needed: Int, inPlace: Int, polled: [String], pollInterval: Duration,
        limit: (sysctl: String, value: Int?, host: Int?)? = nil
    ) -> (message: String, fix: String) {
        let (sysctl, value, host) = limit ?? effective(.watches)
        let user = Account.current().name
        let shown = value.map(String.init) ?? "unknown"
        var message =
            "inotify watch limit reached: could not watch \(path) as \(user) (\(errnoDescription(ENOSPC))): \(sysctl) is \(shown)"
        if sysctl != Kind.watches.sysctl, let host { message += " in certreload's user namespace (the host's \(Kind.watches.sysctl) is \(host))" }
        message +=
            "; certreload needs \(needed) watch(es) and has \(inPlace) (the limit counts every inotify watch of \(user), not only certreload's). "
        message +=
            "Polling \(polled.count) lineage(s) instead, every \(DurationText.seconds(pollInterval)) (poll-interval): \(polled.sorted().joined(separator: ", ")); renewals are still noticed, later"
        let fix = fixText(sysctl: sysctl, value: suggested(current: value, needed: needed), afterwards: "certreload adds the missing watches at its next poll, no restart needed")
        return (message, fix)
    }

    /// The message for the instance limit: no inotify at all, every lineage polled.
    public static func instanceLimitMessage(error: SystemError, lineages: Int, pollInterval: Duration) -> (message: String, fix: String) {
        let (sysctl, value, host) = effective(.instances)
        let user = Account.current().name
        var message = "inotify is not available to \(user): \(error)"
        if error.code == EMFILE {
            message += "; \(sysctl) is \(value.map(String.init) ?? "unknown")"
            if sysctl != Kind.instances.sysctl, let host { message += " in certreload's user namespace (the host's \(Kind.instances.sysctl) is \(host))" }
            message += " and \(user) already uses that many inotify instances"
        }
        message +=
            ". Polling all \(lineages) lineage(s) every \(DurationText.seconds(pollInterval)) (poll-interval) instead; changes to the configuration file are not noticed (send SIGHUP: systemctl reload certreload)"
        let fix: String
        if error.code == EMFILE {
            fix = fixText(sysctl: sysctl, value: suggested(current: value, needed: 1), afterwards: "then restart certreload (systemctl restart certreload) to use inotify again")
        } else {
            fix = "the kernel refused inotify (\(errnoDescription(error.code))): check memory and open files (`cat /proc/sys/fs/file-nr`), then restart certreload"
        }
        return (message, fix)
    }

    private static func fixText(sysctl: String, value: Int, afterwards: String) -> String {
        guard sysctl.hasPrefix("fs.") else {
            // The namespace's own limit is the lower one: the host's sysctl would not help.
            return "raise it in the user namespace certreload runs in (from that namespace, as its owner): echo \(value) > /proc/sys/\(sysctl.replacingDots); \(afterwards)"
        }
        return "sysctl \(sysctl)=\(value)   # now; and for good: echo '\(sysctl) = \(value)' > /etc/sysctl.d/90-certreload-inotify.conf — \(afterwards)"
    }
}

extension String {
    fileprivate var trimmingSpacesAndNewlines: String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\n" || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\n" || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }

    fileprivate var replacingDots: String { split(separator: ".").joined(separator: "/") }
}
