#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What applying one change did.
public struct AccessFixOutcome: Sendable {
    public var change: AccessFixChange
    /// false: it was already so (the tree changed since the plan was made), or it failed.
    public var changed: Bool
    /// "chgrp certreload-certs /etc/letsencrypt/live (group was root)"
    public var line: String
    /// Why it failed, nil when it did not.
    public var failure: String?
}

/// Applies an access fix plan: chown/chmod through a descriptor opened without following
/// links (a link in certbot's tree is never followed out of it), and groupadd/usermod as argv.
///
/// Each chmod adds only the group bit the plan names to the mode found at that moment.
public struct AccessFixApplier: Sendable {
    public init() {}

    public func apply(_ plan: AccessFixPlan) -> [AccessFixOutcome] {
        var outcomes: [AccessFixOutcome] = []
        for change in plan.changes {
            let outcome = apply(change)
            outcomes.append(outcome)
            // A group that could not be created or joined makes every later step pointless.
            if outcome.failure != nil, case .createGroup = change.action { break }
        }
        return outcomes
    }

    func apply(_ change: AccessFixChange) -> AccessFixOutcome {
        let shown = change.commandLine
        switch change.action {
        case .createGroup, .addUser:
            return run(change)
        case .changeGroup(let path, let group, _):
            guard let gid = AccessFixSystem.live.groupID(group) else {
                return AccessFixOutcome(change: change, changed: false, line: shown, failure: "no group \(group)")
            }
            return withDescriptor(change, path) { fd, info in
                if info.st_gid == gid { return (false, "\(shown): already group \(group)") }
                if fchown(fd, uid_t.max, gid) != 0 { return (nil, errnoDescription(errno)) }
                return (true, "\(shown) (group was \(Account.groupName(info.st_gid)))")
            }
        case .addGroupBits(let path, let bits, _):
            return withDescriptor(change, path) { fd, info in
                let mode = info.st_mode & 0o7777
                if mode & bits == bits { return (false, "\(shown): mode \(octal(mode)) has it already") }
                let wanted = mode | (bits & 0o070)
                if fchmod(fd, wanted) != 0 { return (nil, errnoDescription(errno)) }
                return (true, "\(shown) (mode \(octal(mode)) → \(octal(wanted)))")
            }
        }
    }

    /// Opens `path` without following any link on the way (each directory is opened with
    /// O_NOFOLLOW from "/", so a directory swapped for a link is refused, not followed), checks
    /// it is the directory or regular file lstat saw, and hands the descriptor over. The body
    /// returns (changed, line) or (nil, failure).
    private func withDescriptor(
        _ change: AccessFixChange, _ path: String, _ body: (Int32, stat) -> (Bool?, String)
    ) -> AccessFixOutcome {
        let shown = change.commandLine
        func failed(_ text: String) -> AccessFixOutcome {
            AccessFixOutcome(change: change, changed: false, line: shown, failure: text)
        }
        let components = path.split(separator: "/").map(String.init)
        guard path.hasPrefix("/"), let name = components.last, !components.contains("..") else {
            return failed("\(path) is not an absolute path")
        }
        var parent = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        for component in components.dropLast() where parent >= 0 {
            let next = openat(parent, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            close(parent)
            parent = next
            if next < 0 {
                return failed("\(path): a directory on the way cannot be opened without following a link (\(component): \(errnoDescription(code)))")
            }
        }
        guard parent >= 0 else { return failed("\(path): cannot open /: \(errnoDescription(errno))") }
        defer { close(parent) }
        var before = stat()
        guard fstatat(parent, name, &before, AT_SYMLINK_NOFOLLOW) == 0 else {
            return failed("\(path): \(errnoDescription(errno))")
        }
        let type = before.st_mode & S_IFMT
        guard type == S_IFDIR || type == S_IFREG else {
            return failed("\(path) is not a directory or regular file (a link or special file): not changed")
        }
        let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0))
        guard fd >= 0 else { return failed("\(path): \(errnoDescription(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_dev == before.st_dev, info.st_ino == before.st_ino else {
            return failed("\(path) changed while certreload looked at it: not changed")
        }
        let (changed, text) = body(fd, info)
        guard let changed else { return failed("\(shown): \(text)") }
        return AccessFixOutcome(change: change, changed: changed, line: text, failure: nil)
    }

    /// groupadd / usermod, as argv, bounded in time.
    private func run(_ change: AccessFixChange) -> AccessFixOutcome {
        let shown = change.commandLine
        if case .createGroup(let name) = change.action, AccessFixSystem.live.groupID(name) != nil {
            return AccessFixOutcome(change: change, changed: false, line: "\(shown): group \(name) exists already", failure: nil)
        }
        if case .addUser(let user, let group) = change.action, let gid = AccessFixSystem.live.groupID(group),
            let account = try? Account.named(user), account.groups.contains(gid)
        {
            return AccessFixOutcome(change: change, changed: false, line: "\(shown): \(user) is in \(group) already", failure: nil)
        }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(argv: change.argv, outputLimit: 8 * 1024)
        } catch {
            return AccessFixOutcome(change: change, changed: false, line: shown, failure: "cannot run \(shown): \(error)")
        }
        switch child.run(deadline: Deadline(seconds: 30), grace: 2) {
        case .exited(0):
            return AccessFixOutcome(change: change, changed: true, line: shown, failure: nil)
        case let other:
            let said = child.output.lines.suffix(3).joined(separator: " / ")
            return AccessFixOutcome(
                change: change, changed: false, line: shown,
                failure: "\(shown) failed (\(other))" + (said.isEmpty ? "" : ": \(said)"))
        }
    }
}

func octal(_ mode: mode_t) -> String {
    let text = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - text.count)) + text
}
