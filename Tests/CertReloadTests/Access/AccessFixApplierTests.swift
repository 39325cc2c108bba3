import CertReload
import Glibc
import Testing

@Suite("Applying the whole access fix (grant)", .enabled(if: runningAsRoot, "needs root to chown and to try as another user"))
struct AccessFixApplierTests {
    @Test("the plan applied on a real tree makes the lineage readable when tried; a second plan is empty")
    func appliesAndRechecks() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("example.com", version: 1, link: false)
        try fixture.issue("example.com", version: 2)
        let account = try nobody()
        let before = try fixture.check("example.com", user: account)
        #expect(!before.usable)
        let plan = try #require(before.fixPlan)
        #expect(plan.argvs.contains(["chmod", "g+r", fixture.archive("example.com") + "/privkey1.pem"]))

        let outcomes = AccessFixApplier().apply(plan)
        #expect(outcomes.allSatisfy { $0.failure == nil })
        let after = try fixture.check("example.com", user: account)
        #expect(after.usable)
        #expect(!after.codes.contains(.accessLostOnRenewal))
        #expect(after.fixPlan == nil)
        let again = AccessFixPlanner(certbotDirectory: fixture.config, account: account).plan(lineages: ["example.com"])
        #expect(again.isEmpty)
        var info = stat()
        stat(fixture.archive("example.com") + "/privkey2.pem", &info)
        #expect(info.st_mode & 0o777 == 0o640)
    }

    @Test("a path that became a link is refused, and the link's target is not changed")
    func refusesLinks() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("example.com")
        let outside = fixture.root + "/outside.pem"
        try writeFile(outside, "secret", mode: 0o600)
        let key = fixture.archive("example.com") + "/privkey1.pem"
        unlink(key)
        symlink(outside, key)
        let change = AccessFixChange(.addGroupBits(path: key, bits: 0o040, from: 0o600), reason: "test")
        let plan = AccessFixPlan(user: "nobody", lineages: ["example.com"], group: "nogroup", sharedWith: [], changes: [change], notes: [])
        let outcome = try #require(AccessFixApplier().apply(plan).first)
        #expect(outcome.failure?.contains("not a directory or regular file") == true)
        var info = stat()
        stat(outside, &info)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    @Test("a directory on the way swapped for a link is refused, and nothing behind it changes")
    func refusesLinkedDirectories() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("example.com")
        let elsewhere = fixture.root + "/elsewhere"
        mkdir(elsewhere, 0o700)
        try writeFile(elsewhere + "/privkey1.pem", "secret", mode: 0o600)
        let archive = fixture.archive("example.com")
        rename(archive, archive + ".moved")
        symlink(elsewhere, archive)
        let change = AccessFixChange(.addGroupBits(path: archive + "/privkey1.pem", bits: 0o040, from: 0o600), reason: "test")
        let plan = AccessFixPlan(user: "nobody", lineages: ["example.com"], group: "nogroup", sharedWith: [], changes: [change], notes: [])
        let outcome = try #require(AccessFixApplier().apply(plan).first)
        #expect(outcome.failure?.contains("without following a link") == true)
        var info = stat()
        stat(elsewhere + "/privkey1.pem", &info)
        #expect(info.st_mode & 0o777 == 0o600)
    }
}
