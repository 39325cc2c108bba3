#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import CCertReloadShims.Access

/// One thing the kernel checks when the server opens a file.
public struct AccessStep: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Search permission on a directory.
        case traverse = 0
        /// Opening the real file for reading (after checking it is a regular file).
        case read = 1
        /// Blocks for ever, like an open on a hung network mount. Tests only: it is how the
        /// probe's deadline is shown to work without a hung NFS server.
        case stall = 2
    }

    public var path: String
    public var kind: Kind

    public init(_ path: String, _ kind: Kind) {
        self.path = path
        self.kind = kind
    }
}

/// How access was decided: by trying as the user, or by evaluating modes and ACLs.
public enum AccessMethod: String, Sendable {
    case tried
    case evaluated
}

/// The ordered steps of opening a resolved file: every directory on every hop, then the file.
public func accessSteps(for file: ResolvedFile) -> [AccessStep] {
    var ancestors: [String: [String]] = [:]
    return accessSteps(for: file, ancestors: &ancestors)
}

/// The steps of each file; the files of one lineage share their directories, whose
/// ancestors are listed once.
public func accessSteps(for files: [ResolvedFile]) -> [[AccessStep]] {
    var ancestors: [String: [String]] = [:]
    return files.map { accessSteps(for: $0, ancestors: &ancestors) }
}

private func accessSteps(for file: ResolvedFile, ancestors: inout [String: [String]]) -> [AccessStep] {
    var steps: [AccessStep] = []
    var seen: Set<String> = []
    for hop in file.hops {
        let directory = Paths.directory(of: hop)
        let chain: [String]
        if let known = ancestors[directory] {
            chain = known
        } else {
            chain = Paths.ancestors(including: directory)
            ancestors[directory] = chain
        }
        for directory in chain where seen.insert(directory).inserted {
            steps.append(AccessStep(directory, .traverse))
        }
    }
    steps.append(AccessStep(file.realPath, .read))
    return steps
}

/// Decides, for a batch of steps, which ones the service user passes.
///
/// A result is 0 (allowed), an errno, `-(S_IFMT bits)` for a file that is not a regular file
/// (`AccessOracle.notRegular(_:)`), or `AccessOracle.timedOut` for a step the probe child
/// did not finish within `probeTimeout` (and the steps below the same path).
public struct AccessOracle: Sendable {
    public let account: Account
    public let method: AccessMethod
    /// How long the forked probe may take for one batch before it is killed.
    public var probeTimeout: Double

    /// The result for a step the probe did not finish in time (a hung mount).
    public static let timedOut = Int32.min

    /// The file type bits of a result that says "not a regular file", nil for any other result.
    public static func notRegular(_ result: Int32) -> UInt32? {
        result < 0 && result != timedOut ? UInt32(-result) : nil
    }

    /// Tries when certreload runs as root or as the account itself; evaluates otherwise.
    /// `method` forces one way (tests compare both on the same files).
    public init(account: Account, method: AccessMethod? = nil, probeTimeout: Double = 10) {
        self.account = account
        let me = geteuid()
        self.method = method ?? ((me == 0 || me == account.uid) ? .tried : .evaluated)
        self.probeTimeout = probeTimeout
    }

    /// One errno per step (0 = allowed).
    public func results(for steps: [AccessStep]) throws(SystemError) -> [Int32] {
        if steps.isEmpty { return [] }
        switch method {
        case .evaluated:
            return steps.map { step in
                if step.kind != .traverse {
                    var info = stat()
                    guard stat(step.path, &info) == 0 else { return errno }
                    if (info.st_mode & S_IFMT) != S_IFREG { return -Int32(bitPattern: info.st_mode & S_IFMT) }
                }
                guard let permissions = FilePermissions.of(step.path) else { return errno }
                let want: UInt16 = step.kind == .traverse ? 1 : 4
                return PermissionModel.evaluate(want, for: account, on: permissions) == .denied ? EACCES : 0
            }
        case .tried where geteuid() == account.uid && getegid() == account.gid:
            return steps.map(AccessOracle.trySelf)
        case .tried:
            return try probeInChild(steps)
        }
    }

    private static func trySelf(_ step: AccessStep) -> Int32 {
        switch step.kind {
        case .traverse:
            return access(step.path, X_OK) == 0 ? 0 : errno
        case .read, .stall:
            var info = stat()
            guard stat(step.path, &info) == 0 else { return errno }
            if (info.st_mode & S_IFMT) != S_IFREG { return -Int32(bitPattern: info.st_mode & S_IFMT) }
            let fd = open(step.path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            if fd < 0 { return errno }
            close(fd)
            return 0
        }
    }

    /// Runs the steps in a forked child as the account. A child that hangs is killed after
    /// `probeTimeout`: the step it hung on, and every later step under the same path, get
    /// `timedOut`; the remaining steps are tried in a new child.
    private func probeInChild(_ steps: [AccessStep]) throws(SystemError) -> [Int32] {
        var results = [Int32](repeating: 0, count: steps.count)
        var pending = Array(steps.indices)
        while !pending.isEmpty {
            let batch = pending.map { steps[$0] }
            let (rc, completed, codes) = probeOnce(batch)
            if rc == 0 {
                for (index, code) in zip(pending, codes) { results[index] = code }
                break
            }
            guard rc == -ETIMEDOUT, completed < batch.count else {
                throw SystemError("access probe as \(account.name)", code: -rc)
            }
            for (index, code) in zip(pending, codes.prefix(completed)) { results[index] = code }
            let hung = batch[completed].path
            var rest: [Int] = []
            for index in pending.dropFirst(completed) {
                let path = steps[index].path
                if path == hung || path.hasPrefix(hung.hasSuffix("/") ? hung : hung + "/") {
                    results[index] = AccessOracle.timedOut
                } else {
                    rest.append(index)
                }
            }
            pending = rest
        }
        return results
    }

    private func probeOnce(_ steps: [AccessStep]) -> (rc: Int32, completed: Int, results: [Int32]) {
        // Everything the child needs is allocated before fork: C strings, kinds, results.
        let cStrings = steps.map { strdup($0.path) }
        defer { cStrings.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
        let kinds = steps.map(\.kind.rawValue)
        var results = [Int32](repeating: 0, count: steps.count)
        var completed = 0
        let groups = account.groups
        let milliseconds = Int32(clamping: Int64((probeTimeout * 1000).rounded(.up)))
        let rc = pointers.withUnsafeBufferPointer { paths in
            certreload_access_probe(
                account.uid, account.gid, groups, groups.count, paths.baseAddress, kinds, steps.count,
                max(1, milliseconds), &completed, &results)
        }
        return (rc, completed, results)
    }
}

/// Turns failed steps into problems naming the first blocking path, the user and a fix.
public struct AccessAnalysis: Sendable {
    public var account: Account
    public var method: AccessMethod

    public init(account: Account, method: AccessMethod) {
        self.account = account
        self.method = method
    }

    /// Problems for one lineage: at most one per distinct blocking path, plus renewal forecasts.
    public func problems(files: [ResolvedFile], stepsByFile: [[AccessStep]], results: [AccessStep: Int32]) -> [Problem] {
        var blocked: [(step: AccessStep, errno: Int32, files: [ResolvedFile])] = []
        var readableKey: ResolvedFile?
        for (file, steps) in zip(files, stepsByFile) {
            if let failing = steps.first(where: { (results[$0] ?? 0) != 0 }) {
                let code = results[failing] ?? EACCES
                if let index = blocked.firstIndex(where: { $0.step == failing }) {
                    blocked[index].files.append(file)
                } else {
                    blocked.append((failing, code, [file]))
                }
            } else if file.kind == .privkey {
                readableKey = file
            }
        }
        var problems = blocked.map { describe($0.step, errno: $0.errno, files: $0.files) }
        if let key = readableKey, let forecast = renewalForecast(for: key) {
            problems.append(forecast)
        }
        return problems
    }

    private var verb: String { method == .tried ? "cannot" : "would not be able to" }
    private var how: String {
        method == .tried
            ? "tried as \(account.name)"
            : "evaluated from owner, group, mode and ACLs, not tried: run as root to try"
    }

    private func describe(_ step: AccessStep, errno code: Int32, files: [ResolvedFile]) -> Problem {
        let opened = files.map { Paths.base(of: $0.path) }.joined(separator: ", ")
        if code == AccessOracle.timedOut {
            return Problem(
                .error, .accessProbeTimeout, path: step.path, user: account.name,
                message: "trying \(step.path) as \(account.name) did not finish in time (the probe was killed): the file system under it does not answer, e.g. a hung network mount; this blocks \(opened)",
                fix: "check the mount holding \(step.path) (`findmnt -T \(step.path)`, `stat \(step.path)`), then run certreload again")
        }
        if let type = AccessOracle.notRegular(code) {
            return Problem(
                .error, .notRegularFile, path: step.path, user: account.name,
                message: "\(step.path) is a \(SafeFile.fileKind(mode_t(type))), not a regular file (found when \(how)); the server cannot use it as \(opened)",
                fix: "replace \(step.path) with the PEM file certbot wrote")
        }
        let permissions = FilePermissions.of(step.path)
        let detail = permissions.map { " (\($0.summary))" } ?? ""
        let cause = code == EACCES || code == EPERM ? "" : ": \(errnoDescription(code))"
        switch step.kind {
        case .traverse:
            var message = "\(account.describedWithGroups) \(verb) enter \(step.path)\(detail)\(cause); this blocks \(opened) [\(how)]"
            if Paths.base(of: step.path) == "archive" || Paths.base(of: Paths.directory(of: step.path)) == "archive" {
                message += ". The links in live/ point into archive/: access given on live/ alone (chmod -R does not follow links) is not enough"
            }
            return Problem(
                .error, .notTraversable, path: step.path, user: account.name, message: message,
                fix: traverseFix(step.path, permissions))
        case .read, .stall:
            let via = files.first.map { $0.path == step.path ? "" : " (the server opens it as \($0.path))" } ?? ""
            return Problem(
                .error, .unreadable, path: step.path, user: account.name,
                message: "\(account.describedWithGroups) \(verb) read \(step.path)\(detail)\(cause)\(via) [\(how)]",
                fix: readFix(step.path, permissions))
        }
    }

    /// The group to grant through: the file's group when the user is in it, else the user's own.
    private func grantGroup(_ permissions: FilePermissions?) -> (name: String, needsChgrp: Bool) {
        if let permissions, account.groups.contains(permissions.group), permissions.group != 0 {
            return (Account.groupName(permissions.group), false)
        }
        return (Account.groupName(account.gid), true)
    }

    private func traverseFix(_ path: String, _ permissions: FilePermissions?) -> String {
        let group = grantGroup(permissions)
        return group.needsChgrp
            ? "chgrp \(group.name) \(path) && chmod g+rx \(path)"
            : "chmod g+rx \(path)"
    }

    private func readFix(_ path: String, _ permissions: FilePermissions?) -> String {
        let group = grantGroup(permissions)
        return group.needsChgrp
            ? "chgrp \(group.name) \(path) && chmod g+r \(path)"
            : "chmod g+r \(path)"
    }

    /// Warns when the key is readable now only through something certbot will not carry
    /// over to the next key (an ACL entry, or ownership).
    private func renewalForecast(for key: ResolvedFile) -> Problem? {
        guard account.uid != 0, let current = FilePermissions.of(key.realPath) else { return nil }
        let next = PermissionModel.nextRenewalKey(after: current)
        guard PermissionModel.evaluate(4, for: account, on: next) == .denied else { return nil }
        let reason: String
        switch PermissionModel.evaluate(4, for: account, on: current) {
        case .namedUserACL, .namedGroupACL:
            reason = "through an ACL entry, and certbot does not copy ACLs to the new key"
        case .owner:
            reason = "because \(account.name) owns it, and certbot writes the new key as root"
        case .owningGroup:
            reason = "through its group, but certbot drops group bits it cannot see"
        default:
            reason = "through a grant that certbot does not copy to the new key"
        }
        let group = grantGroup(current)
        return Problem(
            .warning, .accessLostOnRenewal, path: key.realPath, user: account.name,
            message: "\(account.name) can read \(key.realPath) now only \(reason): after the next renewal the new privkey file (0600, group \(Account.groupName(current.group))) will be unreadable to it",
            fix: "chgrp \(group.name) \(key.realPath) && chmod g+r \(key.realPath)   # certbot copies the key's group and group bits to every new key")
    }
}
