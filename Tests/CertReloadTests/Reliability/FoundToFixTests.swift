@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// The findings of issue 11's "Found, to fix" list, each shown fixed.
@Suite("Reliability: found and fixed")
struct FoundToFixTests {
    static let methods: [AccessMethod] = [.tried, .evaluated]

    @Test(
        "a socket, FIFO or device where the archive key should be is not-regular-file, tried and evaluated",
        .enabled(if: runningAsRoot, "needs root to try as nobody"),
        arguments: methods, ["socket", "fifo", "device", "directory"])
    func nonRegularKey(method: AccessMethod, kind: String) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("odd.test")
        fixture.openTopDirectories()
        let key = fixture.archive("odd.test") + "/privkey1.pem"
        try HostileFiles.replace(key) { path in
            switch kind {
            case "socket": try HostileFiles.makeSocket(path)
            case "fifo": try HostileFiles.makeFIFO(path)
            case "directory": mkdir(path, 0o755)
            default: symlink("/dev/null", path)
            }
        }
        let report = try Checker(options: CheckOptions(serviceUser: try nobody(), now: fixture.now), accessMethod: method)
            .check([fixture.directory.lineage("odd.test")]).lineages[0]
        let problem = try #require(report.problem(.notRegularFile), "codes: \(report.codes)")
        #expect(problem.path == (kind == "device" ? "/dev/null" : key))
        #expect(report.problem(.unreadable) == nil, "\(report.problems.map(\.message))")
        #expect(!report.usable)
    }

    /// The access paths themselves, given a non-regular file directly (a swap after resolution).
    @Test(
        "the access oracle reports the type of a non-regular file without opening it",
        .enabled(if: runningAsRoot, "needs root to try as nobody"), arguments: methods)
    func oracleTypeCheck(method: AccessMethod) throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-odd")
        defer { FileTree.remove(root) }
        chmod(root, 0o755)
        try HostileFiles.makeSocket(root + "/socket")
        try HostileFiles.makeFIFO(root + "/fifo")
        try writeFile(root + "/plain", "x\n")
        let oracle = AccessOracle(account: try nobody(), method: method)
        let results = try oracle.results(for: [
            AccessStep(root + "/socket", .read), AccessStep(root + "/fifo", .read),
            AccessStep("/dev/zero", .read), AccessStep(root + "/plain", .read),
        ])
        #expect(results.prefix(3).map { AccessOracle.notRegular($0).map { $0 & S_IFMT } } == [S_IFSOCK, S_IFIFO, S_IFCHR])
        #expect(results[3] == 0)
    }

    @Test(
        "a probe child that hangs is killed at its deadline and reported as access-probe-timeout",
        .enabled(if: runningAsRoot, "needs root to fork the probe as nobody"))
    func probeDeadline() throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-hang")
        defer { FileTree.remove(root) }
        chmod(root, 0o755)
        try writeFile(root + "/after", "x\n")
        let account = try nobody()
        let oracle = AccessOracle(account: account, method: .tried, probeTimeout: 0.3)
        let steps = [
            AccessStep(root, .traverse), AccessStep(root + "/mnt", .stall),
            AccessStep(root + "/mnt/key.pem", .read), AccessStep(root + "/after", .read),
        ]
        let results = try oracle.results(for: steps)
        #expect(results[0] == 0)
        #expect(results[1] == AccessOracle.timedOut)
        #expect(results[2] == AccessOracle.timedOut, "a step under the hung path is not tried again")
        #expect(results[3] == 0, "steps elsewhere are tried in a new child")

        var byStep: [AccessStep: Int32] = [:]
        for (step, code) in zip(steps, results) { byStep[step] = code }
        let file = LinkResolver().resolve(.privkey, at: root + "/mnt/key.pem")
        let problems = AccessAnalysis(account: account, method: .tried)
            .problems(files: [file], stepsByFile: [Array(steps.prefix(3))], results: byStep)
        let problem = try #require(problems.first)
        #expect(problem.code == .accessProbeTimeout)
        #expect(problem.path == root + "/mnt")
        #expect(problem.user == account.name)
        #expect(problem.fix?.contains("findmnt -T \(root)/mnt") == true)
    }

    @Test("a state directory that is a regular file: state-unwritable, with the real cause and a fix for it")
    func stateDirectoryIsAFile() throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-state")
        defer { FileTree.remove(root) }
        try writeFile(root + "/state", "not a directory\n")
        let store = StateStore(directory: root + "/state")
        var state = TargetState(target: "web")
        state.deployedSHA256 = "ab"
        let error = try #require(throws: SystemError.self) { try store.save(state) }
        let problem = store.unwritable(error, target: "web")
        #expect(problem.code == .stateUnwritable)
        #expect(problem.path == root + "/state")
        #expect(problem.message.contains("Not a directory") || problem.message.contains("File exists"))
        #expect(problem.message.contains("the next `certreload deploy` or `reload` reloads again"))
        #expect(problem.message.contains("`certreload watch` keeps the record in memory"))
        #expect(problem.fix?.contains("not a directory: move it away") == true)
        #expect(problem.fix?.contains("create the state directory") == false)
    }

    @Test("a read-only state directory names the permission, not a missing directory", .enabled(if: runningAsRoot))
    func stateDirectoryReadOnly() throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-state")
        defer { FileTree.remove(root) }
        // root ignores modes: a read-only bind mount is the honest read-only case.
        mkdir(root + "/state", 0o750)
        guard runCommand(["mount", "--bind", root + "/state", root + "/state"]) == 0,
            runCommand(["mount", "-o", "remount,bind,ro", root + "/state"]) == 0
        else {
            _ = runCommand(["umount", root + "/state"])
            Issue.record("cannot make a read-only bind mount here")
            return
        }
        defer { _ = runCommand(["umount", root + "/state"]) }
        let store = StateStore(directory: root + "/state")
        let error = try #require(throws: SystemError.self) { try store.save(TargetState(target: "web")) }
        let problem = store.unwritable(error, target: "web")
        #expect(problem.code == .stateUnwritable)
        #expect(problem.message.contains("Read-only file system"))
        #expect(problem.fix?.contains("read-only file system") == true)
    }
}

/// Runs argv (no shell) and returns its exit status.
func runCommand(_ argv: [String]) -> Int32 {
    var pid: pid_t = 0
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    guard posix_spawnp(&pid, argv[0], nil, nil, &cArgs, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Security properties of the access probe (issue 11).
@Suite("Reliability: the access probe cannot be talked into reading", .enabled(if: runningAsRoot, "needs root"))
struct AccessProbeSecurityTests {
    @Test("the probe child has dropped root's groups, gid and uid: files only root can read are denied", arguments: [
        (mode: mode_t(0o600), group: gid_t(0)),  // owner root only
        (mode: mode_t(0o640), group: gid_t(0)),  // root's group: readable only if root's groups leaked
        (mode: mode_t(0o604), group: gid_t(0)),  // other may read: the control, allowed
    ])
    func dropsPrivileges(mode: mode_t, group: gid_t) throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-deny")
        defer { FileTree.remove(root) }
        chmod(root, 0o755)
        let file = root + "/secret.pem"
        try writeFile(file, "-----BEGIN PRIVATE KEY-----\n", mode: mode)
        chown(file, 0, group)
        let results = try AccessOracle(account: try nobody(), method: .tried).results(for: [AccessStep(file, .read)])
        #expect(results == [mode & 0o004 != 0 ? 0 : EACCES], "mode \(String(mode, radix: 8))")
    }
}
