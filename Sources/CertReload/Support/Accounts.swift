#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An account as the kernel sees it: uid, primary gid and every supplementary group.
public struct Account: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    /// All groups, the primary one included, as `getgrouplist` gives them.
    public var groups: [gid_t]

    public init(name: String, uid: uid_t, gid: gid_t, groups: [gid_t]) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// Looks up an account by name (or numeric uid) in the user database.
    public static func named(_ nameOrID: String) throws(UsageError) -> Account {
        var record = passwd()
        var buffer = [CChar](repeating: 0, count: 16384)
        var result: UnsafeMutablePointer<passwd>?
        var rc = getpwnam_r(nameOrID, &record, &buffer, buffer.count, &result)
        if result == nil, let uid = uid_t(nameOrID) {
            rc = getpwuid_r(uid, &record, &buffer, buffer.count, &result)
        }
        guard rc == 0, result != nil else {
            throw UsageError(
                "unknown user '\(nameOrID)': no such account in the user database",
                fix: "give the account the server runs as, e.g. `--user stalwart` (see `systemctl show -p User <unit>`)")
        }
        let name = String(cString: record.pw_name)
        return Account(
            name: name, uid: record.pw_uid, gid: record.pw_gid,
            groups: groupList(name: name, gid: record.pw_gid))
    }

    /// The account this process runs as (effective uid).
    public static func current() -> Account {
        let uid = geteuid()
        var record = passwd()
        var buffer = [CChar](repeating: 0, count: 16384)
        var result: UnsafeMutablePointer<passwd>?
        let name: String
        if getpwuid_r(uid, &record, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: record.pw_name)
        } else {
            name = "uid \(uid)"
        }
        let count = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(count, 0)))
        if count > 0 { _ = getgroups(count, &groups) }
        let gid = getegid()
        if !groups.contains(gid) { groups.insert(gid, at: 0) }
        return Account(name: name, uid: uid, gid: gid, groups: groups)
    }

    private static func groupList(name: String, gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let before = count
            if getgrouplist(name, gid, &groups, &count) >= 0 {
                return Array(groups.prefix(Int(count)))
            }
            if count <= before { count = before * 2 }
        }
    }

    /// "stalwart (uid 998; groups stalwart, ssl-cert)"
    public var describedWithGroups: String {
        let names = groups.map { Account.groupName($0) }.joined(separator: ", ")
        return "\(name) (uid \(uid); groups \(names))"
    }

    /// The name of a group, or its number when it has none.
    public static func groupName(_ gid: gid_t) -> String {
        var record = group()
        var buffer = [CChar](repeating: 0, count: 16384)
        var result: UnsafeMutablePointer<group>?
        if getgrgid_r(gid, &record, &buffer, buffer.count, &result) == 0, result != nil {
            return String(cString: record.gr_name)
        }
        return String(gid)
    }

    /// The name of a user, or its number when it has none.
    public static func userName(_ uid: uid_t) -> String {
        var record = passwd()
        var buffer = [CChar](repeating: 0, count: 16384)
        var result: UnsafeMutablePointer<passwd>?
        if getpwuid_r(uid, &record, &buffer, buffer.count, &result) == 0, result != nil {
            return String(cString: record.pw_name)
        }
        return String(uid)
    }
}
