import CertReload
import Glibc
import Testing
import CCertReloadShims.Access

/// These tests change ownership to the `nobody` account and try access as it: they need root.
@Suite("Access as the service user", .enabled(if: runningAsRoot, "needs root to chown and to try as another user"))
struct AccessCheckTests {
    /// Both ways of deciding must agree: the tried answer is the truth, the evaluated one a model.
    static let methods: [AccessMethod] = [.tried, .evaluated]

    @Test("certbot's default 0700 live/ blocks first", arguments: methods)
    func defaultPermissions(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("default.test")
        let report = try check(fixture, "default.test", method: method)
        let problem = try #require(report.problem(.notTraversable))
        #expect(problem.path == fixture.config + "/live")
        #expect(problem.user == "nobody")
        #expect(problem.fix?.contains("chmod g+rx \(fixture.config)/live") == true)
        #expect(report.problems.filter { $0.code == .notTraversable }.count == 1, "one problem per blocking path")
    }

    @Test("live/ opened but archive/ not: archive/ is named, with the chmod -R explanation", arguments: methods)
    func archiveTrap(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("trap.test")
        chmod(fixture.config + "/live", 0o755)
        let report = try check(fixture, "trap.test", method: method)
        let problem = try #require(report.problem(.notTraversable))
        #expect(problem.path == fixture.config + "/archive")
        #expect(problem.message.contains("chmod -R does not follow links"))
        #expect(problem.message.contains("cert.pem, chain.pem, fullchain.pem, privkey.pem"))
    }

    @Test("an unreadable key is named with its owner, group and mode", arguments: methods)
    func unreadableKey(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("key.test")
        fixture.openTopDirectories()
        let report = try check(fixture, "key.test", method: method)
        let problem = try #require(report.problem(.unreadable))
        #expect(problem.path == fixture.archive("key.test") + "/privkey1.pem")
        #expect(problem.message.contains("mode 0600"))
        #expect(problem.message.contains("live/key.test/privkey.pem"))
        #expect(problem.fix == "chgrp nogroup \(fixture.archive("key.test"))/privkey1.pem && chmod g+r \(fixture.archive("key.test"))/privkey1.pem")
        #expect(!report.usable)
    }

    @Test("a group-based fix is usable and survives renewal", arguments: methods)
    func groupFix(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("group.test")
        let account = try nobody()
        for dir in [fixture.config + "/live", fixture.config + "/archive"] {
            chown(dir, 0, account.gid)
            chmod(dir, 0o750)
        }
        let key = fixture.archive("group.test") + "/privkey1.pem"
        chown(key, 0, account.gid)
        chmod(key, 0o640)
        let report = try check(fixture, "group.test", method: method)
        #expect(report.problems.isEmpty, "\(report.problems)")
    }

    @Test("access through an ACL only is usable now, lost at the next renewal", arguments: methods)
    func aclOnly(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("acl.test")
        fixture.openTopDirectories()
        let key = fixture.archive("acl.test") + "/privkey1.pem"
        try #require(setUserACL(key, uid: try nobody().uid, permissions: 4), "setting an ACL (needs ACL support on \(fixture.root))")
        let report = try check(fixture, "acl.test", method: method)
        #expect(report.usable, "\(report.problems)")
        let warning = try #require(report.problem(.accessLostOnRenewal))
        #expect(warning.severity == .warning)
        #expect(warning.path == key)
        #expect(warning.message.contains("ACL"))
        #expect(warning.fix?.hasPrefix("chgrp nogroup \(key) && chmod g+r \(key)") == true)
    }

    @Test("access through ownership of the key is lost too", arguments: methods)
    func ownerOnly(method: AccessMethod) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("owner.test")
        fixture.openTopDirectories()
        let key = fixture.archive("owner.test") + "/privkey1.pem"
        chown(key, try nobody().uid, 0)
        let report = try check(fixture, "owner.test", method: method)
        #expect(report.usable)
        #expect(report.problem(.accessLostOnRenewal)?.message.contains("owns it") == true)
    }

    private func check(_ fixture: LineageFixture, _ name: String, method: AccessMethod) throws -> LineageReport {
        let report = try Checker(options: CheckOptions(serviceUser: try nobody(), now: fixture.now), accessMethod: method)
            .check([fixture.directory.lineage(name)])
        #expect(report.accessMethod == method)
        return report.lineages[0]
    }

    /// Adds `user:<uid>:<perm>` and a matching mask to a file's access ACL (setfacl's effect).
    private func setUserACL(_ path: String, uid: uid_t, permissions: UInt16) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let owner = UInt16((info.st_mode >> 6) & 7), group = UInt16((info.st_mode >> 3) & 7), other = UInt16(info.st_mode & 7)
        var bytes: [UInt8] = [2, 0, 0, 0]
        func entry(_ tag: UInt16, _ perm: UInt16, _ id: UInt32) {
            bytes += [UInt8(tag & 0xff), UInt8(tag >> 8), UInt8(perm), 0]
            bytes += withUnsafeBytes(of: id.littleEndian) { Array($0) }
        }
        entry(0x01, owner, UInt32.max)
        entry(0x02, permissions, uid)
        entry(0x04, group, UInt32.max)
        entry(0x10, permissions | group, UInt32.max)
        entry(0x20, other, UInt32.max)
        return setxattr(path, "system.posix_acl_access", bytes, bytes.count, 0) == 0
    }
}
