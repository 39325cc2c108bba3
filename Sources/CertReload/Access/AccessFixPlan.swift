#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One change of an access fix, with the argv that makes it by hand (never a shell string).
public struct AccessFixChange: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// `groupadd --system NAME`
        case createGroup(String)
        /// `usermod -aG GROUP USER`
        case addUser(String, group: String)
        /// `chgrp GROUP PATH`: the path's group was `from`.
        case changeGroup(path: String, group: String, from: String)
        /// `chmod g+r PATH` / `chmod g+x PATH`: only group bits are added.
        case addGroupBits(path: String, bits: mode_t, from: mode_t)
    }

    public var action: Action
    /// Why this change is needed, for people.
    public var reason: String

    public init(_ action: Action, reason: String) {
        self.action = action
        self.reason = reason
    }

    public var argv: [String] {
        switch action {
        case .createGroup(let name): return ["groupadd", "--system", name]
        case .addUser(let user, let group): return ["usermod", "-aG", group, user]
        case .changeGroup(let path, let group, _): return ["chgrp", group, path]
        case .addGroupBits(let path, let bits, _):
            return ["chmod", "g+" + (bits & 0o040 != 0 ? "r" : "") + (bits & 0o010 != 0 ? "x" : ""), path]
        }
    }

    /// The argv quoted for a shell, one line of the block to paste.
    public var commandLine: String { ShellQuoting.join(argv) }
}

/// The whole change that lets one service user read certbot lineages now and after renewals.
///
/// Every directory and key on the way, in the order the kernel meets them: certbot's `live/`
/// and `archive/`, each lineage directory, then every archive file of every version that the
/// user cannot read (every `privkeyN.pem`, since certbot copies the newest key's group and
/// group bits to the next one). It never adds a bit for "other", never names `renewal/` or
/// `accounts/`, and only adds group bits to what is already there.
public struct AccessFixPlan: Sendable {
    public var user: String
    public var lineages: [String]
    /// The group access goes through.
    public var group: String
    /// Other accounts that keep their access through the shared group (added to it).
    public var sharedWith: [String]
    public var changes: [AccessFixChange]
    /// Things the plan cannot change (outside certbot's tree) or that a person must do after it.
    public var notes: [String]

    public init(user: String, lineages: [String], group: String, sharedWith: [String], changes: [AccessFixChange], notes: [String]) {
        self.user = user
        self.lineages = lineages
        self.group = group
        self.sharedWith = sharedWith
        self.changes = changes
        self.notes = notes
    }

    public var isEmpty: Bool { changes.isEmpty }

    /// One block to paste as root.
    public var script: String { changes.map(\.commandLine).joined(separator: "\n") }

    /// The argv list (`fix_plan` in JSON).
    public var argvs: [[String]] { changes.map(\.argv) }
}

/// What the planner reads from the system; tests give a fake tree and user database.
public struct AccessFixSystem: Sendable {
    /// Permissions of the path itself (lstat: a link is reported as a link).
    public var entry: @Sendable (String) -> (kind: FileKind, permissions: FilePermissions)?
    /// Names in a directory, nil when it cannot be listed.
    public var list: @Sendable (String) -> [String]?
    /// gid of a group name, nil when no such group.
    public var groupID: @Sendable (String) -> gid_t?
    /// Accounts that use a group: primary group or listed member (names).
    public var accountsIn: @Sendable (gid_t) -> [String]
    /// The target of a symbolic link, as written.
    public var linkTarget: @Sendable (String) -> String?
    /// The name of a group (its number when it has none).
    public var groupName: @Sendable (gid_t) -> String

    public enum FileKind: Sendable { case directory, regular, symlink, other }

    public init(
        entry: @escaping @Sendable (String) -> (kind: FileKind, permissions: FilePermissions)?,
        list: @escaping @Sendable (String) -> [String]?,
        groupID: @escaping @Sendable (String) -> gid_t?,
        accountsIn: @escaping @Sendable (gid_t) -> [String],
        linkTarget: @escaping @Sendable (String) -> String?,
        groupName: @escaping @Sendable (gid_t) -> String = { Account.groupName($0) }
    ) {
        self.groupName = groupName
        self.entry = entry
        self.list = list
        self.groupID = groupID
        self.accountsIn = accountsIn
        self.linkTarget = linkTarget
    }

    /// The real file system and user database.
    public static let live = AccessFixSystem(
        entry: { path in
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            let kind: FileKind
            switch info.st_mode & S_IFMT {
            case S_IFDIR: kind = .directory
            case S_IFREG: kind = .regular
            case S_IFLNK: kind = .symlink
            default: kind = .other
            }
            let acl = kind == .symlink ? nil : PosixACL.read(path)
            return (kind, FilePermissions(owner: info.st_uid, group: info.st_gid, mode: info.st_mode, acl: acl))
        },
        list: { path in
            guard let dir = opendir(path) else { return nil }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = direntName(entry)
                if name != "." && name != ".." { names.append(name) }
            }
            return names
        },
        groupID: { name in
            var record = group()
            var buffer = [CChar](repeating: 0, count: 16384)
            var result: UnsafeMutablePointer<group>?
            guard getgrnam_r(name, &record, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
            return record.gr_gid
        },
        accountsIn: { gid in AccountDatabase.accounts(inGroup: gid) },
        linkTarget: { path in
            var buffer = [CChar](repeating: 0, count: 4096)
            let count = readlink(path, &buffer, buffer.count - 1)
            guard count > 0 else { return nil }
            return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        })
}

/// Who uses a group, from the user and group databases.
enum AccountDatabase {
    /// Names of accounts whose primary group is `gid`, then the group's listed members.
    static func accounts(inGroup gid: gid_t) -> [String] {
        var names: [String] = []
        // getpwent is not reentrant; certreload calls it from one place at a time (plans are
        // made before anything runs in parallel).
        setpwent()
        while let entry = getpwent() {
            if entry.pointee.pw_gid == gid { names.append(String(cString: entry.pointee.pw_name)) }
        }
        endpwent()
        var record = group()
        var buffer = [CChar](repeating: 0, count: 65536)
        var result: UnsafeMutablePointer<group>?
        if getgrgid_r(gid, &record, &buffer, buffer.count, &result) == 0, result != nil, var member = record.gr_mem {
            while let name = member.pointee {
                let text = String(cString: name)
                if !names.contains(text) { names.append(text) }
                member += 1
            }
        }
        return names
    }
}

/// Computes the whole access fix for one user over certbot lineages.
public struct AccessFixPlanner: Sendable {
    /// The name of the group created when a key's group already serves another account.
    public static let sharedGroup = "certreload-certs"
    /// A gid no real group has, standing for a group the plan creates.
    static let plannedGID: gid_t = 0xFFFF_FFFE

    /// certbot's configuration directory (physical path).
    public var certbotDirectory: String
    public var account: Account
    /// `--group`: grant through this group (it must exist or be createable).
    public var group: String?
    public var system: AccessFixSystem

    public init(certbotDirectory: String, account: Account, group: String? = nil, system: AccessFixSystem = .live) {
        self.certbotDirectory = Paths.realDirectory(certbotDirectory) ?? Paths.absolute(certbotDirectory)
        self.account = account
        self.group = group
        self.system = system
    }

    /// The plan for these lineage names (each `live/NAME`).
    public func plan(lineages names: [String]) -> AccessFixPlan {
        var notes: [String] = []
        let targets = collectTargets(names, notes: &notes)
        guard account.uid != 0 else {
            return AccessFixPlan(user: account.name, lineages: names, group: system.groupName(0), sharedWith: [], changes: [], notes: ["root reads everything: nothing to grant"])
        }

        // The group: --group; else the newest key's group when the user is in it already;
        // else the user's own group; a shared group when a change would take another account's access.
        let newestKeyGroup = targets.last { $0.isKey }.flatMap { system.entry($0.path)?.permissions.group }
        var choice: String
        var explicit = false
        if let group {
            choice = group
            explicit = true
        } else if let keyGroup = newestKeyGroup, keyGroup != 0, account.groups.contains(keyGroup) {
            choice = system.groupName(keyGroup)
        } else {
            choice = system.groupName(account.gid)
        }
        var attempt = changes(through: choice, targets: targets)
        if !attempt.displaced.isEmpty && !explicit && choice != Self.sharedGroup {
            choice = Self.sharedGroup
            attempt = changes(through: choice, targets: targets)
        }

        var prefix: [AccessFixChange] = []
        let gid = system.groupID(choice)
        if gid == nil {
            prefix.append(AccessFixChange(
                .createGroup(choice),
                reason: choice == Self.sharedGroup
                    ? "a shared group for every account that reads these keys (\(([account.name] + attempt.displaced).joined(separator: ", ")))"
                    : "the group --group names does not exist yet"))
        }
        let members = gid.map(system.accountsIn) ?? []
        var shared: [String] = []
        for name in [account.name] + attempt.displaced where !members.contains(name) && !shared.contains(name) {
            shared.append(name)
            prefix.append(AccessFixChange(
                .addUser(name, group: choice),
                reason: name == account.name
                    ? "\(name) reads through group \(choice)"
                    : "\(name) reads these files now through their current group: it keeps access through \(choice)"))
        }
        if !shared.isEmpty {
            notes.append("running processes keep the groups they started with: restart the service of \(shared.joined(separator: " and ")) after the grant so it runs with group \(choice)"
                + (shared.count > 1 ? " (until then the files' new group is not theirs: the next reload would fail)" : ""))
        }
        return AccessFixPlan(
            user: account.name, lineages: names, group: choice,
            sharedWith: shared.filter { $0 != account.name },
            changes: prefix + attempt.changes,
            notes: notes + attempt.notes)
    }

    struct Target {
        var path: String
        /// 1: search (directory), 4: read (file).
        var want: UInt16
        /// Keys are changed even when readable another way: certbot carries only group grants.
        var isKey: Bool
        var label: String
    }

    /// Every path on the way, in order, each once.
    func collectTargets(_ names: [String], notes: inout [String]) -> [Target] {
        var targets: [Target] = []
        var seen: Set<String> = []
        func add(_ path: String, _ want: UInt16, key: Bool = false, _ label: String) {
            if seen.insert(path).inserted { targets.append(Target(path: path, want: want, isKey: key, label: label)) }
        }
        let live = Paths.join(certbotDirectory, "live")
        let archive = Paths.join(certbotDirectory, "archive")
        add(certbotDirectory, 1, "certbot's directory")
        add(live, 1, "certbot's live/")
        add(archive, 1, "certbot's archive/")
        var files: [Target] = []
        for name in names {
            let lineageDir = Paths.join(live, name)
            guard let entry = system.entry(lineageDir), entry.kind == .directory else {
                notes.append("\(lineageDir) is not a directory: not changed")
                continue
            }
            add(lineageDir, 1, "lineage directory live/\(name)")
            // The archive directory the links name (certbot's own is archive/NAME).
            var archiveDir = Paths.join(archive, name)
            if let target = system.linkTarget(Paths.join(lineageDir, "privkey.pem")) {
                let resolved = Paths.directory(of: target.hasPrefix("/") ? target : Paths.join(lineageDir, target))
                let normal = Paths.normalize(resolved)
                if normal.hasPrefix(archive + "/") {
                    archiveDir = normal
                } else {
                    notes.append("\(lineageDir)/privkey.pem points outside \(archive) (\(target)): only certbot's tree is changed")
                }
            }
            guard let archiveEntry = system.entry(archiveDir), archiveEntry.kind == .directory else {
                notes.append("\(archiveDir) is not a directory: not changed")
                continue
            }
            add(archiveDir, 1, "archive directory of \(name)")
            for file in (system.list(archiveDir) ?? []).compactMap(ArchiveFileName.init).sorted() {
                let path = Paths.join(archiveDir, file.name)
                // A --reuse-key privkeyN.pem is a link to an older key: the real file is listed itself.
                guard let fileEntry = system.entry(path), fileEntry.kind == .regular else { continue }
                files.append(Target(path: path, want: 4, isKey: file.kind == .privkey, label: "\(file.kind.rawValue) version \(file.version) of \(name)"))
            }
        }
        for file in files { add(file.path, file.want, key: file.isKey, file.label) }
        return targets
    }

    /// The chgrp/chmod changes through `groupName`, and the accounts a chgrp would leave out.
    func changes(through groupName: String, targets: [Target]) -> (changes: [AccessFixChange], displaced: [String], notes: [String]) {
        let gid = system.groupID(groupName) ?? Self.plannedGID
        var member = account
        if !member.groups.contains(gid) { member.groups.append(gid) }
        let members = gid == Self.plannedGID ? [] : system.accountsIn(gid)
        var changes: [AccessFixChange] = []
        var displaced: [String] = []
        var notes: [String] = []
        for target in targets {
            guard let entry = system.entry(target.path) else { continue }
            guard entry.kind == .directory || entry.kind == .regular else { continue }
            let permissions = entry.permissions
            let bit: mode_t = target.want == 1 ? 0o010 : 0o040
            let summary = permissions.summary
            if target.isKey {
                if permissions.group == gid && permissions.mode & bit != 0 { continue }
            } else if PermissionModel.evaluate(target.want, for: member, on: permissions) != .denied {
                continue
            }
            if permissions.group != gid {
                // Whoever reads through the old group loses that path unless "other" gives it.
                if permissions.group != 0, permissions.mode & bit != 0, permissions.mode & (target.want == 1 ? 0o001 : 0o004) == 0 {
                    for name in system.accountsIn(permissions.group)
                    where name != account.name && !members.contains(name) && !displaced.contains(name) {
                        displaced.append(name)
                    }
                }
                changes.append(AccessFixChange(
                    .changeGroup(path: target.path, group: groupName, from: system.groupName(permissions.group)),
                    reason: "\(target.label) (\(summary))"))
            }
            if permissions.mode & bit == 0 {
                changes.append(AccessFixChange(
                    .addGroupBits(path: target.path, bits: bit, from: permissions.mode),
                    reason: "\(target.label) (\(summary))"))
            }
            if let acl = permissions.acl, acl.hasNamedEntries {
                notes.append("\(target.path) has an ACL (\(acl.summary)): chmod g+… changes its mask, not the group entry; check the result")
            }
        }
        return (changes, displaced, notes)
    }
}

/// `privkey3.pem` → (.privkey, 3).
struct ArchiveFileName: Comparable {
    var name: String
    var kind: LineageFile
    var version: Int

    init?(_ name: String) {
        guard name.hasSuffix(".pem") else { return nil }
        let stem = name.dropLast(4)
        guard let kind = LineageFile.allCases.first(where: { stem.hasPrefix($0.rawValue) }) else { return nil }
        let digits = stem.dropFirst(kind.rawValue.count)
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let version = Int(digits) else { return nil }
        // "fullchain" starts with no other kind's name, but "cert" could be "certX": exact digits only.
        self.name = name
        self.kind = kind
        self.version = version
    }

    static func < (lhs: ArchiveFileName, rhs: ArchiveFileName) -> Bool {
        (lhs.version, lhs.kind) < (rhs.version, rhs.kind)
    }
}
