import CertReload
import Glibc
import Testing

@Suite("Resolving certbot's links")
struct LinkResolverTests {
    @Test("relative links resolve into archive/ and name the version")
    func relativeLinks() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("example.test", version: 1)
        try fixture.issue("example.test", version: 2)
        let report = try fixture.check("example.test")
        #expect(report.version == 2)
        #expect(report.usable, "\(report.problems)")
        let cert = try #require(report.files[.cert])
        #expect(cert.realPath == fixture.archive("example.test") + "/cert2.pem")
        #expect(cert.linkTarget == "../../archive/example.test/cert2.pem")
    }

    @Test("absolute links and --reuse-key link chains are followed")
    func absoluteAndReuseKey() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        let (_, key) = try fixture.issue("reuse.test", version: 1)
        // Version 2 reuses the key: privkey2.pem is itself a link to privkey1.pem.
        let leaf = try fixture.ca.issue(names: ["reuse.test"], key: key, notBefore: fixture.now - 60, notAfter: fixture.now + 50 * 86_400)
        try fixture.writer.writeVersion(lineage: "reuse.test", version: 2, certificate: leaf, chain: [fixture.ca.intermediate], key: key)
        let archiveKey2 = fixture.archive("reuse.test") + "/privkey2.pem"
        unlink(archiveKey2)
        #expect(symlink("privkey1.pem", archiveKey2) == 0)
        try fixture.writer.linkAll(lineage: "reuse.test", toVersion: 2)
        // And cert.pem as an absolute link.
        let certLink = fixture.live("reuse.test") + "/cert.pem"
        unlink(certLink)
        #expect(symlink(fixture.archive("reuse.test") + "/cert2.pem", certLink) == 0)

        let report = try fixture.check("reuse.test")
        #expect(report.usable, "\(report.problems)")
        #expect(report.version == 2)
        let privkey = try #require(report.files[.privkey])
        #expect(privkey.hops.count == 3)
        #expect(privkey.realPath == fixture.archive("reuse.test") + "/privkey1.pem")
    }

    @Test("a missing link is `missing`, a link to nothing is `dangling-link`")
    func missingAndDangling() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("gone.test")
        unlink(fixture.live("gone.test") + "/chain.pem")
        unlink(fixture.archive("gone.test") + "/fullchain1.pem")
        let report = try fixture.check("gone.test")
        #expect(!report.usable)
        #expect(report.problem(.missing)?.path == fixture.live("gone.test") + "/chain.pem")
        #expect(report.problem(.danglingLink)?.path == fixture.live("gone.test") + "/fullchain.pem")
    }

    @Test("the shared directory walk agrees with realpath: links in the middle, `..` after a link, `.`, missing parts")
    func physicalDirectoriesAgreeWithRealpath() throws {
        let temporary = try TemporaryDirectory("certreload-physical")
        let root = temporary.path
        let real = try #require(Paths.realDirectory(root))
        for directory in ["a", "a/b", "a/b/c", "elsewhere", "elsewhere/d"] { #expect(mkdir(real + "/" + directory, 0o755) == 0) }
        #expect(symlink("a/b", real + "/link") == 0)               // relative, to a directory two down
        #expect(symlink(real + "/elsewhere", real + "/a/b/c/abs") == 0)  // absolute, deeper in the walk
        #expect(symlink("link", real + "/link2") == 0)             // a link to a link
        let directories = PhysicalDirectories()
        let cases = [
            "", "/a", "/a/b/c", "/link", "/link/c", "/link/..", "/link/../b/c/.", "/link2/c/abs/d",
            "/a/b/c/abs/..", "/a/./b//c", "/a/b/c/abs/d/../d",
        ]
        for suffix in cases {
            let path = root + suffix
            #expect(directories.physical(path) == Paths.realDirectory(path), "\(path)")
            // A second look answers from the cache with the same path.
            #expect(directories.physical(path) == Paths.realDirectory(path), "\(path) (cached)")
        }
        // Past the end of what exists: the existing part resolved, the rest as written.
        #expect(directories.physical(root + "/link/nothing/here") == real + "/a/b/nothing/here")
    }

    @Test("a link loop is reported, never followed forever")
    func linkLoop() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("loop.test")
        let archiveCert = fixture.archive("loop.test") + "/cert1.pem"
        unlink(archiveCert)
        #expect(symlink("cert1.pem", archiveCert) == 0)
        let report = try fixture.check("loop.test")
        #expect(report.codes.contains(.linkLoop))
        #expect(!report.usable)
    }

    @Test("a FIFO, a device and a directory are not read", arguments: ["fifo", "device", "directory"])
    func notRegular(kind: String) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("odd.test")
        let target = fixture.archive("odd.test") + "/chain1.pem"
        unlink(target)
        switch kind {
        case "fifo": #expect(mkfifo(target, 0o644) == 0)
        case "device": #expect(symlink("/dev/zero", target) == 0)
        default: #expect(mkdir(target, 0o755) == 0)
        }
        let report = try fixture.check("odd.test")
        let problem = try #require(report.problem(.notRegularFile))
        #expect(problem.path?.hasSuffix(kind == "device" ? "/dev/zero" : "chain1.pem") == true)
        #expect(!report.usable)
    }

    @Test("a file over 1 MiB is refused")
    func tooLarge() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("big.test")
        try writeFile(fixture.archive("big.test") + "/chain1.pem", String(repeating: "A", count: 2 << 20))
        let report = try fixture.check("big.test")
        #expect(report.problem(.tooLarge)?.path == fixture.archive("big.test") + "/chain1.pem")
    }

    @Test("links at different versions are a half-updated lineage")
    func versionMismatch() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("mid.test", version: 1)
        try fixture.issue("mid.test", version: 2, link: false)
        // certbot's order: cert, privkey, chain, fullchain. Stop after privkey.
        try fixture.writer.link(lineage: "mid.test", .cert, toVersion: 2)
        try fixture.writer.link(lineage: "mid.test", .privkey, toVersion: 2)
        let report = try fixture.check("mid.test")
        #expect(report.version == nil)
        #expect(report.codes.first == .versionMismatch)
        #expect(!report.usable)
    }

    @Test("a link to another kind of file is wrong-link-target, not a renewal in progress")
    func wrongKind() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("kind.test")
        let link = fixture.live("kind.test") + "/cert.pem"
        unlink(link)
        #expect(symlink("../../archive/kind.test/privkey1.pem", link) == 0)
        let report = try fixture.check("kind.test")
        #expect(report.codes.first == .wrongLinkTarget)
        #expect(!report.codes.contains(.versionMismatch))
        #expect(report.problem(.wrongLinkTarget)?.path == link)
    }

    @Test("README and previous_*.pem in live/NAME are ignored; README in live/ is not a lineage")
    func ignoresCertbotExtras() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("extras.test")
        try writeFile(fixture.config + "/live/README", "certbot readme")
        try writeFile(fixture.live("extras.test") + "/README", "certbot readme")
        #expect(symlink("/nonexistent", fixture.live("extras.test") + "/previous_cert.pem") == 0)
        let lineages = try fixture.directory.lineages()
        #expect(lineages.map(\.name) == ["extras.test"])
        #expect(try fixture.check("extras.test").usable)
    }

    @Test("archive version numbers", arguments: [
        ("cert12.pem", LineageFile.cert, 12 as Int?), ("privkey3.pem", .privkey, 3), ("fullchain1.pem", .fullchain, 1),
        ("chain.pem", .chain, nil), ("cert1.pem", .chain, nil), ("certx.pem", .cert, nil),
    ])
    func versions(name: String, kind: LineageFile, expected: Int?) {
        #expect(LinkResolver.version(of: name, kind: kind) == expected)
    }

    @Test("an unknown lineage and a missing certbot directory are usage errors")
    func usageErrors() throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("known.test")
        #expect(throws: UsageError.self) { try fixture.directory.lineage("unknown.test") }
        #expect(throws: UsageError.self) { try CertbotDirectory(fixture.root + "/absent").lineages() }
    }
}
