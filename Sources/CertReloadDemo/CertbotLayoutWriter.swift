public import CertReload
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes lineages the way certbot lays them out: versioned files in `archive/NAME/`,
/// relative links in `live/NAME/`. For the demo and the tests; it is not certbot.
public struct CertbotLayoutWriter: Sendable {
    public let configDirectory: String

    /// Creates `live/` and `archive/` with certbot's default mode 0700.
    public init(configDirectory: String) throws(SystemError) {
        self.configDirectory = Paths.absolute(configDirectory)
        try CertbotLayoutWriter.makeDirectory(self.configDirectory, mode: 0o755)
        try CertbotLayoutWriter.makeDirectory(Paths.join(self.configDirectory, "live"), mode: 0o700)
        try CertbotLayoutWriter.makeDirectory(Paths.join(self.configDirectory, "archive"), mode: 0o700)
    }

    /// Writes into an existing certbot directory, leaving the modes of live/ and archive/ alone.
    public init(existingConfigDirectory: String) {
        self.configDirectory = Paths.absolute(existingConfigDirectory)
    }

    public func liveDirectory(_ lineage: String) -> String {
        Paths.join(configDirectory, "live/\(lineage)")
    }

    public func archiveDirectory(_ lineage: String) -> String {
        Paths.join(configDirectory, "archive/\(lineage)")
    }

    public func archivePath(_ lineage: String, _ file: LineageFile, version: Int) -> String {
        Paths.join(archiveDirectory(lineage), "\(file.rawValue)\(version).pem")
    }

    /// Writes `archive/NAME/{cert,chain,fullchain,privkey}N.pem` (keys 0600, the rest 0644).
    public func writeVersion(
        lineage: String, version: Int, certificate: Certificate, chain: [Certificate], key: PrivateKey
    ) throws(SystemError) {
        try CertbotLayoutWriter.makeDirectory(archiveDirectory(lineage), mode: 0o755)
        try CertbotLayoutWriter.makeDirectory(liveDirectory(lineage), mode: 0o755)
        let chainPEM = chain.map(\.pem).joined()
        try CertbotLayoutWriter.write(archivePath(lineage, .cert, version: version), certificate.pem, mode: 0o644)
        try CertbotLayoutWriter.write(archivePath(lineage, .chain, version: version), chainPEM, mode: 0o644)
        try CertbotLayoutWriter.write(
            archivePath(lineage, .fullchain, version: version), certificate.pem + chainPEM, mode: 0o644)
        try CertbotLayoutWriter.write(archivePath(lineage, .privkey, version: version), key.pem(), mode: 0o600)
    }

    /// Points `live/NAME/<file>.pem` at version N, by unlink then symlink, as certbot does.
    public func link(lineage: String, _ file: LineageFile, toVersion version: Int) throws(SystemError) {
        let linkPath = Paths.join(liveDirectory(lineage), file.linkName)
        if unlink(linkPath) != 0 && errno != ENOENT { throw SystemError("unlink", path: linkPath) }
        let target = "../../archive/\(lineage)/\(file.rawValue)\(version).pem"
        guard symlink(target, linkPath) == 0 else { throw SystemError("symlink", path: linkPath) }
    }

    /// Points all four links at version N.
    public func linkAll(lineage: String, toVersion version: Int) throws(SystemError) {
        for file in LineageFile.allCases { try link(lineage: lineage, file, toVersion: version) }
    }

    public static func makeDirectory(_ path: String, mode: mode_t) throws(SystemError) {
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
        guard chmod(path, mode) == 0 else { throw SystemError("chmod", path: path) }
    }

    /// Writes a whole file with the given mode (created or truncated).
    public static func write(_ path: String, _ text: String, mode: mode_t) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("open", path: path) }
        defer { close(fd) }
        try Descriptor.writeAll(fd, text, path: path)
        guard fchmod(fd, mode) == 0 else { throw SystemError("chmod", path: path) }
    }
}
