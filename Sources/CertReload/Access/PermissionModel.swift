#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The ownership, mode and POSIX ACL of one file, enough to decide access without trying.
public struct FilePermissions: Sendable, Equatable {
    public var owner: uid_t
    public var group: gid_t
    /// Permission bits (mode & 0o777).
    public var mode: mode_t
    public var acl: PosixACL?

    public init(owner: uid_t, group: gid_t, mode: mode_t, acl: PosixACL? = nil) {
        self.owner = owner
        self.group = group
        self.mode = mode & 0o777
        self.acl = acl
    }

    /// Reads the permissions of `path` (following links), ACL included.
    public static func of(_ path: String) -> FilePermissions? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FilePermissions(
            owner: info.st_uid, group: info.st_gid, mode: info.st_mode,
            acl: PosixACL.read(path))
    }

    /// "root:root 0700", plus "+ACL" when an access ACL with named entries exists.
    public var summary: String {
        let octal = String(mode, radix: 8)
        let padded = String(repeating: "0", count: max(0, 4 - octal.count)) + octal
        var text = "owner \(Account.userName(owner)), group \(Account.groupName(group)), mode \(padded)"
        if let acl, acl.hasNamedEntries { text += ", ACL \(acl.summary)" }
        return text
    }
}

/// Which class of a file's permissions decided an access.
public enum AccessGrant: Sendable, Equatable {
    case superuser
    case owner
    case namedUserACL
    case owningGroup
    case namedGroupACL
    case other
    case denied
}

/// A POSIX access ACL (`system.posix_acl_access`), parsed from its on-disk form.
public struct PosixACL: Sendable, Equatable {
    public enum Tag: UInt16, Sendable {
        case userObject = 0x01, user = 0x02, groupObject = 0x04, group = 0x08, mask = 0x10, other = 0x20
    }

    public struct Entry: Sendable, Equatable {
        public var tag: Tag
        public var permissions: UInt16
        public var id: UInt32

        public init(tag: Tag, permissions: UInt16, id: UInt32) {
            self.tag = tag
            self.permissions = permissions
            self.id = id
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses the xattr value (version 2, then 8-byte little-endian entries).
    public init?(xattr bytes: [UInt8]) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0 else { return nil }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
        guard u32(0) == 2 else { return nil }
        var entries: [Entry] = []
        var offset = 4
        while offset < bytes.count {
            guard let tag = Tag(rawValue: u16(offset)) else { return nil }
            entries.append(Entry(tag: tag, permissions: u16(offset + 2), id: u32(offset + 4)))
            offset += 8
        }
        self.entries = entries
    }


    public var hasNamedEntries: Bool {
        entries.contains { $0.tag == .user || $0.tag == .group }
    }

    var mask: UInt16? { entries.first { $0.tag == .mask }?.permissions }

    /// "user:stalwart:r--,mask::r--" style summary of the named entries and mask.
    public var summary: String {
        entries.compactMap { entry -> String? in
            let perms = (entry.permissions & 4 != 0 ? "r" : "-") + (entry.permissions & 2 != 0 ? "w" : "-")
                + (entry.permissions & 1 != 0 ? "x" : "-")
            switch entry.tag {
            case .user: return "user:\(Account.userName(entry.id)):\(perms)"
            case .group: return "group:\(Account.groupName(entry.id)):\(perms)"
            case .mask: return "mask::\(perms)"
            default: return nil
            }
        }.joined(separator: ",")
    }
}

/// Decides access the way the kernel does (`generic_permission` with POSIX ACLs).
public enum PermissionModel {
    /// 4 = read, 1 = search/execute.
    public static func evaluate(_ want: UInt16, for account: Account, on file: FilePermissions) -> AccessGrant {
        if account.uid == 0 { return .superuser }
        let mode = UInt16(file.mode)
        if account.uid == file.owner {
            return (mode >> 6) & want == want ? .owner : .denied
        }
        if let acl = file.acl, acl.hasNamedEntries {
            let mask = acl.mask ?? 7
            if let entry = acl.entries.first(where: { $0.tag == .user && $0.id == account.uid }) {
                return entry.permissions & mask & want == want ? .namedUserACL : .denied
            }
            var matched = false
            for entry in acl.entries {
                switch entry.tag {
                case .groupObject where account.groups.contains(file.group):
                    matched = true
                    if entry.permissions & mask & want == want { return .owningGroup }
                case .group where account.groups.contains(entry.id):
                    matched = true
                    if entry.permissions & mask & want == want { return .namedGroupACL }
                default:
                    continue
                }
            }
            if matched { return .denied }
            return mode & want == want ? .other : .denied
        }
        if account.groups.contains(file.group) {
            return (mode >> 3) & want == want ? .owningGroup : .denied
        }
        return mode & want == want ? .other : .denied
    }

    /// The private key certbot will write at the next renewal: owned by certbot's user
    /// (root), the group of the current key, mode 0600 plus the current key's group bits and
    /// world-read bit, and no ACL (certbot's `compute_private_key_mode`).
    public static func nextRenewalKey(after current: FilePermissions, certbotUser: uid_t = 0) -> FilePermissions {
        FilePermissions(
            owner: certbotUser, group: current.group, mode: 0o600 | (current.mode & 0o074), acl: nil)
    }
}
