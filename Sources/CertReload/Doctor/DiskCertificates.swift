#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One version of a lineage's certificate in certbot's archive/.
public struct ArchivedCertificate: Sendable {
    public var lineage: String
    public var version: Int
    public var path: String
    public var sha256: String
    public var subjectAltNames: [String]
    public var notAfter: Int64?
    /// When certbot wrote the file (its mtime).
    public var writtenAt: Int64

    public init(lineage: String, version: Int, path: String, sha256: String, subjectAltNames: [String], notAfter: Int64?, writtenAt: Int64) {
        self.lineage = lineage
        self.version = version
        self.path = path
        self.sha256 = sha256
        self.subjectAltNames = subjectAltNames
        self.notAfter = notAfter
        self.writtenAt = writtenAt
    }
}

/// Where a served leaf is on disk.
public enum DiskMatch: Sendable, Equatable {
    /// The version live/ points at now.
    case current(lineage: String, version: Int)
    /// An older version: the server was not reloaded after `newer` was written.
    case older(lineage: String, version: Int, current: Int, currentSince: Int64)
    /// Nothing in archive/.
    case none
}

/// Every certificate version of every lineage, to recognise what a server serves.
public struct DiskCertificates: Sendable {
    public var certificates: [ArchivedCertificate]
    /// lineage → the version its cert.pem link names.
    public var currentVersions: [String: Int]
    public var lineageNames: [String]

    public init(certificates: [ArchivedCertificate], currentVersions: [String: Int], lineageNames: [String]) {
        self.certificates = certificates
        self.currentVersions = currentVersions
        self.lineageNames = lineageNames
    }

    /// Reads archive/NAME/certN.pem of every lineage in live/ (unreadable ones are skipped).
    public static func scan(_ directory: CertbotDirectory) -> DiskCertificates {
        let sources = (try? directory.lineages()) ?? []
        var certificates: [ArchivedCertificate] = []
        var current: [String: Int] = [:]
        for source in sources {
            let resolver = LinkResolver()
            let cert = resolver.resolve(.cert, at: Paths.join(source.path, "cert.pem"), readContents: false)
            if let version = cert.version { current[source.name] = version }
            let archive = cert.hops.count > 1 ? Paths.directory(of: cert.realPath) : Paths.join(Paths.join(directory.path, "archive"), source.name)
            guard let names = AccessFixSystem.live.list(archive) else { continue }
            for file in names.compactMap(ArchiveFileName.init) where file.kind == .cert {
                let path = Paths.join(archive, file.name)
                guard case .success(let bytes) = SafeFile.read(path, followLinks: false),
                    let leaf = Certificate.parseAll(pem: bytes).certificates.first
                else { continue }
                var info = stat()
                let written = stat(path, &info) == 0 ? Int64(info.st_mtim.tv_sec) : 0
                certificates.append(ArchivedCertificate(
                    lineage: source.name, version: file.version, path: path, sha256: leaf.sha256,
                    subjectAltNames: leaf.subjectAltNames, notAfter: leaf.notAfter, writtenAt: written))
            }
        }
        return DiskCertificates(certificates: certificates, currentVersions: current, lineageNames: sources.map(\.name))
    }

    public func match(sha256: String) -> DiskMatch {
        guard let found = certificates.first(where: { $0.sha256 == sha256 }) else { return .none }
        let current = currentVersions[found.lineage] ?? found.version
        if found.version == current { return .current(lineage: found.lineage, version: found.version) }
        let since = certificates.first { $0.lineage == found.lineage && $0.version == current }?.writtenAt ?? 0
        return .older(lineage: found.lineage, version: found.version, current: current, currentSince: since)
    }

    /// Lineages whose current certificate covers `host` (wildcards as a client matches them).
    public func lineages(covering host: String) -> [(name: String, wildcard: Bool)] {
        lineageNames.compactMap { name in
            guard let version = currentVersions[name],
                let certificate = certificates.first(where: { $0.lineage == name && $0.version == version })
            else { return nil }
            let names = certificate.subjectAltNames.map { $0.lowercased() }
            let lower = host.lowercased()
            if names.contains(lower) { return (name, false) }
            if let dot = lower.firstIndex(of: "."), names.contains("*" + lower[dot...]) { return (name, true) }
            return nil
        }
    }
}
