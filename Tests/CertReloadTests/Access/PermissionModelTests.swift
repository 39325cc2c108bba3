import CertReload
import Glibc
import Testing

@Suite("Deciding access from owner, group, mode and ACLs")
struct PermissionModelTests {
    let service = Account(name: "svc", uid: 1500, gid: 1500, groups: [1500, 1600])

    @Test("mode bits pick owner, then group, then other", arguments: [
        // owner, group, mode, want, expected
        (1500 as uid_t, 0 as gid_t, 0o400 as mode_t, 4 as UInt16, AccessGrant.owner),
        (1500, 0, 0o044, 4, .denied),  // owner class decides even when others may read
        (0, 1600, 0o040, 4, .owningGroup),
        (0, 1600, 0o004, 4, .denied),  // group class decides
        (0, 0, 0o004, 4, .other),
        (0, 0, 0o700, 1, .denied),
        (0, 1500, 0o710, 1, .owningGroup),
    ])
    func modeBits(owner: uid_t, group: gid_t, mode: mode_t, want: UInt16, expected: AccessGrant) {
        let file = FilePermissions(owner: owner, group: group, mode: mode)
        #expect(PermissionModel.evaluate(want, for: service, on: file) == expected)
    }

    @Test("named ACL entries are limited by the mask")
    func aclMask() {
        let entries: [PosixACL.Entry] = [
            .init(tag: .userObject, permissions: 6, id: UInt32.max),
            .init(tag: .user, permissions: 4, id: 1500),
            .init(tag: .groupObject, permissions: 0, id: UInt32.max),
            .init(tag: .mask, permissions: 4, id: UInt32.max),
            .init(tag: .other, permissions: 0, id: UInt32.max),
        ]
        var file = FilePermissions(owner: 0, group: 0, mode: 0o640, acl: PosixACL(entries: entries))
        #expect(PermissionModel.evaluate(4, for: service, on: file) == .namedUserACL)
        file.acl?.entries[3].permissions = 0
        #expect(PermissionModel.evaluate(4, for: service, on: file) == .denied)
    }

    @Test("a named group entry grants through any supplementary group")
    func aclGroup() {
        let acl = PosixACL(entries: [
            .init(tag: .userObject, permissions: 6, id: UInt32.max),
            .init(tag: .groupObject, permissions: 0, id: UInt32.max),
            .init(tag: .group, permissions: 5, id: 1600),
            .init(tag: .mask, permissions: 5, id: UInt32.max),
            .init(tag: .other, permissions: 0, id: UInt32.max),
        ])
        let file = FilePermissions(owner: 0, group: 0, mode: 0o650, acl: acl)
        #expect(PermissionModel.evaluate(4, for: service, on: file) == .namedGroupACL)
        #expect(PermissionModel.evaluate(1, for: service, on: file) == .namedGroupACL)
    }

    @Test("the xattr form parses; garbage does not")
    func xattrParsing() {
        // version 2, user_obj rw-, user:1500 r--, group_obj ---, mask r--, other ---
        var bytes: [UInt8] = [2, 0, 0, 0]
        for (tag, perm, id) in [(1, 6, UInt32.max), (2, 4, 1500), (4, 0, UInt32.max), (0x10, 4, UInt32.max), (0x20, 0, UInt32.max)] {
            bytes += [UInt8(tag & 0xff), UInt8(tag >> 8), UInt8(perm), 0]
            bytes += withUnsafeBytes(of: UInt32(id).littleEndian) { Array($0) }
        }
        let acl = PosixACL(xattr: bytes)
        #expect(acl?.entries.count == 5)
        #expect(acl?.entries[1] == PosixACL.Entry(tag: .user, permissions: 4, id: 1500))
        #expect(PosixACL(xattr: [1, 0, 0, 0]) == nil)
        #expect(PosixACL(xattr: [2, 0, 0, 0, 1]) == nil)
    }

    @Test("certbot's next key keeps group and world-read bits, not owner or ACL")
    func renewalForecast() {
        let acl = PosixACL(entries: [.init(tag: .user, permissions: 4, id: 1500), .init(tag: .mask, permissions: 4, id: UInt32.max)])
        let current = FilePermissions(owner: 1500, group: 1600, mode: 0o664, acl: acl)
        let next = PermissionModel.nextRenewalKey(after: current)
        #expect(next.owner == 0)
        #expect(next.group == 1600)
        #expect(next.mode == 0o664)
        #expect(next.acl == nil)
        let private_ = PermissionModel.nextRenewalKey(after: FilePermissions(owner: 1500, group: 0, mode: 0o600))
        #expect(private_.mode == 0o600)
        #expect(PermissionModel.evaluate(4, for: service, on: private_) == .denied)
    }
}
