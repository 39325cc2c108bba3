import CertReload
import Glibc
import Testing

/// A certbot tree and user database in memory, for the planner.
///
/// `@unchecked Sendable`: each test owns its tree and uses it from one task at a time.
final class FakeCertbotTree: @unchecked Sendable {
    var entries: [String: (kind: AccessFixSystem.FileKind, permissions: FilePermissions)] = [:]
    var links: [String: String] = [:]
    var groups: [String: gid_t] = [:]
    var members: [gid_t: [String]] = [:]
    let root = "/fake/letsencrypt"

    /// certbot's defaults: live/ and archive/ 0700 root, lineage dirs 0755, keys 0600, others 0644.
    init(lineage: String = "example.com", versions: Int = 2, reuseKeyFrom: Int? = nil) {
        for directory in [root, "\(root)/renewal", "\(root)/accounts", "\(root)/archive/\(lineage)", "\(root)/live/\(lineage)"] {
            add(directory, .directory, mode: 0o755)
        }
        add("\(root)/live", .directory, mode: 0o700)
        add("\(root)/archive", .directory, mode: 0o700)
        for version in 1...versions {
            for kind in ["cert", "chain", "fullchain"] { add("\(root)/archive/\(lineage)/\(kind)\(version).pem", .regular, mode: 0o644) }
            if let from = reuseKeyFrom, version > from {
                add("\(root)/archive/\(lineage)/privkey\(version).pem", .symlink, mode: 0o777)
                links["\(root)/archive/\(lineage)/privkey\(version).pem"] = "privkey\(from).pem"
            } else {
                add("\(root)/archive/\(lineage)/privkey\(version).pem", .regular, mode: 0o600)
            }
        }
        for kind in ["cert", "chain", "fullchain", "privkey"] {
            add("\(root)/live/\(lineage)/\(kind).pem", .symlink, mode: 0o777)
            links["\(root)/live/\(lineage)/\(kind).pem"] = "../../archive/\(lineage)/\(kind)\(versions).pem"
        }
        groups = ["root": 0, "svc": 1500, "other": 1600]
        members = [1500: ["svc"], 1600: ["other"]]
    }

    func add(_ path: String, _ kind: AccessFixSystem.FileKind, mode: mode_t, group: gid_t = 0) {
        entries[path] = (kind, FilePermissions(owner: 0, group: group, mode: mode))
    }

    var system: AccessFixSystem {
        AccessFixSystem(
            entry: { self.entries[$0] },
            list: { directory in
                let prefix = directory + "/"
                return self.entries.keys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") }
                    .map { String($0.dropFirst(prefix.count)) }
            },
            groupID: { name in self.groups[name] ?? gid_t(name).flatMap { gid in self.groups.values.contains(gid) ? gid : nil } },
            accountsIn: { self.members[$0] ?? [] },
            linkTarget: { self.links[$0] },
            groupName: { gid in self.groups.first { $0.value == gid }?.key ?? String(gid) })
    }

    /// Applies a plan the way grant does: group changes, then only added group bits.
    func apply(_ plan: AccessFixPlan) {
        for change in plan.changes {
            switch change.action {
            case .createGroup(let name): groups[name] = 7777
            case .addUser(let user, let group): members[groups[group]!, default: []].append(user)
            case .changeGroup(let path, let group, _): entries[path]!.permissions.group = groups[group] ?? gid_t(group)!
            case .addGroupBits(let path, let bits, _): entries[path]!.permissions.mode |= bits
            }
        }
    }

    func account(_ name: String, uid: uid_t, gid: gid_t) -> Account {
        Account(name: name, uid: uid, gid: gid, groups: members.filter { $0.value.contains(name) }.map(\.key).sorted())
    }

    func canRead(_ account: Account, lineage: String = "example.com", version: Int) -> Bool {
        let path = "\(root)/archive/\(lineage)/privkey\(version).pem"
        let chain = [root, "\(root)/live", "\(root)/live/\(lineage)", "\(root)/archive", "\(root)/archive/\(lineage)"]
        return chain.allSatisfy { PermissionModel.evaluate(1, for: account, on: entries[$0]!.permissions) != .denied }
            && PermissionModel.evaluate(4, for: account, on: entries[path]!.permissions) != .denied
    }
}

@Suite("The whole access fix: every directory and key, lasting across renewals")
struct AccessFixPlanTests {
    @Test("certbot's defaults: live/, archive/ and every key of every version, in order, one plan")
    func defaults() {
        let tree = FakeCertbotTree()
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        let plan = AccessFixPlanner(certbotDirectory: tree.root, account: svc, system: tree.system).plan(lineages: ["example.com"])
        let r = tree.root
        #expect(plan.group == "svc")
        #expect(plan.argvs == [
            ["chgrp", "svc", "\(r)/live"], ["chmod", "g+x", "\(r)/live"],
            ["chgrp", "svc", "\(r)/archive"], ["chmod", "g+x", "\(r)/archive"],
            ["chgrp", "svc", "\(r)/archive/example.com/privkey1.pem"], ["chmod", "g+r", "\(r)/archive/example.com/privkey1.pem"],
            ["chgrp", "svc", "\(r)/archive/example.com/privkey2.pem"], ["chmod", "g+r", "\(r)/archive/example.com/privkey2.pem"],
        ])
        #expect(plan.sharedWith.isEmpty)
        #expect(!plan.script.contains("renewal") && !plan.script.contains("accounts"))
        #expect(!plan.script.contains("o+") && !plan.script.contains("a+"))
    }

    @Test("applied, it lets the user read now and after the next renewal; a second plan is empty")
    func appliedThenIdempotent() {
        let tree = FakeCertbotTree()
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        let planner = AccessFixPlanner(certbotDirectory: tree.root, account: svc, system: tree.system)
        #expect(!tree.canRead(svc, version: 2))
        tree.apply(planner.plan(lineages: ["example.com"]))
        #expect(tree.canRead(svc, version: 2))
        // certbot's next key: the newest key's group and group bits (the forecast).
        let next = PermissionModel.nextRenewalKey(after: tree.entries["\(tree.root)/archive/example.com/privkey2.pem"]!.permissions)
        #expect(PermissionModel.evaluate(4, for: svc, on: next) == .owningGroup)
        #expect(planner.plan(lineages: ["example.com"]).isEmpty)
        // Other bits untouched everywhere.
        #expect(tree.entries.values.allSatisfy { $0.kind == .symlink || $0.permissions.mode & 0o007 == 0o005 || $0.permissions.mode & 0o007 == 0o004 || $0.permissions.mode & 0o007 == 0 })
        #expect(tree.entries["\(tree.root)/renewal"]!.permissions.group == 0)
    }

    @Test("a second account on a key whose group serves the first: a shared group, both keep access")
    func sharedGroup() {
        let tree = FakeCertbotTree()
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        tree.apply(AccessFixPlanner(certbotDirectory: tree.root, account: svc, system: tree.system).plan(lineages: ["example.com"]))
        let other = tree.account("other", uid: 1600, gid: 1600)
        let plan = AccessFixPlanner(certbotDirectory: tree.root, account: other, system: tree.system).plan(lineages: ["example.com"])
        #expect(plan.group == AccessFixPlanner.sharedGroup)
        #expect(plan.sharedWith == ["svc"])
        #expect(plan.argvs.prefix(3) == [
            ["groupadd", "--system", "certreload-certs"], ["usermod", "-aG", "certreload-certs", "other"],
            ["usermod", "-aG", "certreload-certs", "svc"],
        ])
        tree.apply(plan)
        let svcAfter = tree.account("svc", uid: 1500, gid: 1500)
        let otherAfter = tree.account("other", uid: 1600, gid: 1600)
        #expect(tree.canRead(svcAfter, version: 2))
        #expect(tree.canRead(otherAfter, version: 2))
        #expect(AccessFixPlanner(certbotDirectory: tree.root, account: svcAfter, system: tree.system).plan(lineages: ["example.com"]).isEmpty)
        #expect(AccessFixPlanner(certbotDirectory: tree.root, account: otherAfter, system: tree.system).plan(lineages: ["example.com"]).isEmpty)
    }

    @Test("--group names the group; a missing one is created and the user added")
    func explicitGroup() {
        let tree = FakeCertbotTree()
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        let plan = AccessFixPlanner(certbotDirectory: tree.root, account: svc, group: "ssl-cert", system: tree.system).plan(lineages: ["example.com"])
        #expect(plan.argvs.first == ["groupadd", "--system", "ssl-cert"])
        #expect(plan.argvs.dropFirst().first == ["usermod", "-aG", "ssl-cert", "svc"])
        #expect(plan.argvs.contains(["chgrp", "ssl-cert", "\(tree.root)/live"]))
    }

    @Test("--reuse-key: a privkeyN.pem that is a link is not changed, the key it names is")
    func reuseKey() {
        let tree = FakeCertbotTree(versions: 3, reuseKeyFrom: 1)
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        let plan = AccessFixPlanner(certbotDirectory: tree.root, account: svc, system: tree.system).plan(lineages: ["example.com"])
        let paths = plan.argvs.map { $0.last! }
        #expect(paths.contains("\(tree.root)/archive/example.com/privkey1.pem"))
        #expect(!paths.contains("\(tree.root)/archive/example.com/privkey2.pem"))
        #expect(!paths.contains("\(tree.root)/archive/example.com/privkey3.pem"))
    }

    @Test("a directory others may already enter is left alone")
    func alreadyOpen() {
        let tree = FakeCertbotTree()
        tree.entries["\(tree.root)/live"]!.permissions.mode = 0o711
        let svc = tree.account("svc", uid: 1500, gid: 1500)
        let plan = AccessFixPlanner(certbotDirectory: tree.root, account: svc, system: tree.system).plan(lineages: ["example.com"])
        #expect(!plan.argvs.contains { $0.last == "\(tree.root)/live" })
    }
}
