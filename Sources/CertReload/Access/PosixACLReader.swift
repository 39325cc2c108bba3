internal import CCertReloadShims.Access

extension PosixACL {
    /// The access ACL of `path`, or nil when it has none (or the file system has no ACLs).
    public static func read(_ path: String) -> PosixACL? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = getxattr(path, "system.posix_acl_access", &buffer, buffer.count)
        guard n > 0 else { return nil }
        return PosixACL(xattr: Array(buffer.prefix(n)))
    }
}
