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
        /// Opening the real file for reading.
        case read = 1
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
    var steps: [AccessStep] = []
    var seen: Set<String> = []
    for hop in file.hops {
        for directory in Paths.ancestors(including: Paths.directory(of: hop)) where seen.insert(directory).inserted {
            steps.append(AccessStep(directory, .traverse))
        }
    }
    steps.append(AccessStep(file.realPath, .read))
    return steps
}

/// Decides, for a batch of steps, which ones the service user passes.
public struct AccessOracle: Sendable {
    public let account: Account
    public let method: AccessMethod

    /// Tries when certreload runs as root or as the account itself; evaluates otherwise.
    /// `method` forces one way (tests compare both on the same files).
    public init(account: Account, method: AccessMethod? = nil) {
        self.account = account
        let me = geteuid()
        self.method = method ?? ((me == 0 || me == account.uid) ? .tried : .evaluated)
    }

    /// One errno per step (0 = allowed).
    public func results(for steps: [AccessStep]) throws(SystemError) -> [Int32] {
        if steps.isEmpty { return [] }
        switch method {
        case .evaluated:
            return steps.map { step in
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
        case .read:
            let fd = open(step.path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            if fd < 0 { return errno }
            close(fd)
            return 0
        }
    }

    private func probeInChild(_ steps: [AccessStep]) throws(SystemError) -> [Int32] {
        // Everything the child needs is allocated before fork: C strings, kinds, results.
        let cStrings = steps.map { strdup($0.path) }
        defer { cStrings.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
        let kinds = steps.map(\.kind.rawValue)
        var results = [Int32](repeating: 0, count: steps.count)
        let groups = account.groups
        let rc = pointers.withUnsafeBufferPointer { paths in
            certreload_access_probe(
                account.uid, account.gid, groups, groups.count, paths.baseAddress, kinds, steps.count,
                &results)
        }
        if rc != 0 {
            throw SystemError("access probe as \(account.name)", code: -rc)
        }
        return results
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
        let permissions = FilePermissions.of(step.path)
        let detail = permissions.map { " (\($0.summary))" } ?? ""
        let opened = files.map { Paths.base(of: $0.path) }.joined(separator: ", ")
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
        case .read:
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
