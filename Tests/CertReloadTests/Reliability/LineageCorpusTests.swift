@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// The bad-lineage corpus (Tests/Corpus/lineage.tsv): each broken lineage gets its problem
/// code, is unusable, and the check changes no file. Certificates are made at test time.
@Suite("Reliability: bad-lineage corpus")
struct LineageCorpusTests {
    static let cases = CorpusCase.load("lineage.tsv")

    @Test("the corpus has at least 60 lineage cases")
    func size() { #expect(Self.cases.count >= 60) }

    @Test("a broken lineage gets its code and is not usable", arguments: cases)
    func brokenLineage(_ corpusCase: CorpusCase) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        var hostnames: [String] = []
        var issued = false
        var steps: [(file: LineageFile, op: String)] = []
        for step in corpusCase.steps {
            if step.hasPrefix("hostnames=") {
                hostnames = step.dropFirst("hostnames=".count).split(separator: ",").map(String.init)
            } else if step.hasPrefix("issue:") {
                try reissue(fixture, String(step.dropFirst("issue:".count)))
                issued = true
            } else if let equals = step.firstIndex(of: "="), let file = LineageFile(rawValue: String(step[..<equals])) {
                steps.append((file, String(step[step.index(after: equals)...])))
            } else {
                Issue.record("unknown step '\(step)'")
            }
        }
        if !issued { try fixture.issue("c.test") }
        for (file, op) in steps { try apply(op, to: file, fixture) }

        let before = snapshot(fixture.archive("c.test")) + snapshot(fixture.live("c.test"))
        let report = try fixture.check("c.test", hostnames: hostnames)
        let after = snapshot(fixture.archive("c.test")) + snapshot(fixture.live("c.test"))
        #expect(before == after, "the check changed nothing")
        let codes = report.problems.map(\.code.rawValue)
        if corpusCase.expected == "usable" {
            #expect(report.usable, "\(report.problems.map { "[\($0.code.rawValue)] \($0.message)" })")
        } else {
            #expect(codes.contains(corpusCase.expected), "got \(codes): \(report.problems.map(\.message))")
            if let problem = report.problems.first(where: { $0.code.rawValue == corpusCase.expected }) {
                #expect(problem.path != nil || problem.code == .hostnameNotCovered, "the problem names a path")
                if problem.severity == .error { #expect(!report.usable) }
            }
        }
        // No key material in any message or fix: no base64 line of the key file appears.
        let keyLines = String(decoding: readBytes(fixture.writer.archivePath("c.test", .privkey, version: 1)), as: UTF8.self)
            .split(separator: "\n").filter { $0.count >= 16 && !$0.hasPrefix("-----") }
        for problem in report.problems {
            for line in keyLines {
                #expect(!problem.message.contains(line) && !(problem.fix ?? "").contains(line), "key material in \(problem.code)")
            }
        }
    }

    /// Reissues c.test with other names or times.
    private func reissue(_ fixture: LineageFixture, _ spec: String) throws {
        let now = fixture.now
        if spec.hasPrefix("names=") {
            try fixture.issue("c.test", names: spec.dropFirst(6).split(separator: ",").map(String.init))
        } else if spec == "no-san" || spec.hasPrefix("cn-only=") {
            // cn-only: the CN carries the name, no SAN at all (what pre-2017 CAs issued).
            let cn = spec == "no-san" ? "no names here" : String(spec.dropFirst("cn-only=".count))
            let key = try CertificateFactory.makeKey(.ecdsaP256)
            let leaf = try CertificateFactory.makeCertificate(
                commonName: cn, key: key, issuer: (fixture.ca.intermediate, fixture.ca.intermediateKey),
                notBefore: now - 3600, notAfter: now + 60 * 86_400)
            try fixture.writer.writeVersion(lineage: "c.test", version: 1, certificate: leaf, chain: [fixture.ca.intermediate], key: key)
            try fixture.writer.linkAll(lineage: "c.test", toVersion: 1)
        } else if spec == "expired" {
            try fixture.issue("c.test", notBefore: now - 90 * 86_400, notAfter: now - 86_400)
        } else if spec == "not-yet-valid" {
            try fixture.issue("c.test", notBefore: now + 86_400, notAfter: now + 90 * 86_400)
        } else if spec.hasPrefix("expiring:"), let days = Int64(spec.dropFirst("expiring:".count)) {
            try fixture.issue("c.test", notAfter: now + days * 86_400)
        } else {
            Issue.record("unknown issue spec '\(spec)'")
        }
    }

    private func apply(_ op: String, to file: LineageFile, _ fixture: LineageFixture) throws {
        let path = fixture.writer.archivePath("c.test", file, version: 1)
        let original = readBytes(path)
        let mode: mode_t = file == .privkey ? 0o600 : 0o644
        let pemText = String(decoding: original, as: UTF8.self)
        func other(_ kind: LineageFile) -> [UInt8] { readBytes(fixture.writer.archivePath("c.test", kind, version: 1)) }
        func leafAndChain() -> (leaf: String, chain: String) {
            (String(decoding: other(.cert), as: UTF8.self), String(decoding: other(.chain), as: UTF8.self))
        }
        let (name, argument): (String, String) = {
            guard let colon = op.firstIndex(of: ":") else { return (op, "") }
            return (String(op[..<colon]), String(op[op.index(after: colon)...]))
        }()
        switch name {
        case "truncate": try writeBytes(path, Array(original.prefix(Int(argument) ?? 0)), mode: mode)
        case "empty": try writeBytes(path, [], mode: mode)
        case "binary": try writeBytes(path, (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }, mode: mode)
        case "der":
            let der = runCapturing(["openssl", file == .privkey ? "pkey" : "x509", "-in", path, "-outform", "DER"])
            try #require(!der.isEmpty)
            try writeBytes(path, der, mode: mode)
        case "concat":
            guard let second = LineageFile(rawValue: argument) else { Issue.record("concat of \(argument)"); return }
            try writeBytes(path, original + other(second), mode: mode)
        case "junk-between":
            let (leaf, chain) = leafAndChain()
            try writeFile(path, leaf + "this is not PEM; it sits between two blocks\n\n" + chain)
        case "junk-before": try writeFile(path, "junk before the block\n" + pemText, mode: mode)
        case "junk-after": try writeFile(path, pemText + "junk after the block\n", mode: mode)
        case "crlf": try writeFile(path, pemText.split(separator: "\n").joined(separator: "\r\n") + "\r\n", mode: mode)
        case "no-end-line":
            try writeFile(path, pemText.split(separator: "\n").dropLast().joined(separator: "\n") + "\n", mode: mode)
        case "other-key":
            let type: CertificateFactory.KeyType = argument == "rsa" ? .rsa(bits: 2048) : argument == "ed25519" ? .ed25519 : .ecdsaP256
            try writeFile(path, try CertificateFactory.makeKey(type).pem(), mode: mode)
        case "rsa-1024": try writeFile(path, try CertificateFactory.makeKey(.rsa(bits: 1024)).pem(), mode: mode)
        case "encrypted-pkcs8":
            let key = try #require(try? PrivateKey.parse(pem: original).get())
            try writeFile(path, key.pem(passphrase: "corpus passphrase"), mode: mode)
        case "encrypted-legacy":
            let legacy = runCapturing(["openssl", "ec", "-in", path, "-aes128", "-passout", "pass:corpus"])
            try #require(String(decoding: legacy, as: UTF8.self).contains("Proc-Type: 4,ENCRYPTED"))
            try writeBytes(path, legacy, mode: mode)
        case "reversed":
            let (leaf, chain) = leafAndChain()
            try writeFile(path, chain + leaf)
        case "duplicate-leaf":
            let (leaf, chain) = leafAndChain()
            try writeFile(path, leaf + leaf + chain)
        case "unrelated":
            let stranger = try TestCA(name: "unrelated", now: fixture.now)
            if file == .chain {
                try writeFile(path, stranger.intermediate.pem)
            } else {
                try writeFile(path, String(decoding: other(.cert), as: UTF8.self) + stranger.intermediate.pem)
            }
        case "self-signed", "root-only":
            // self-signed: a leaf for the lineage's key that signs itself; root-only: the CA's root.
            let pem: String
            if name == "root-only" {
                pem = fixture.ca.root.pem
            } else {
                let key = try #require(try? PrivateKey.parse(pem: other(.privkey)).get())
                pem = try CertificateFactory.makeCertificate(
                    commonName: "c.test", subjectAltNames: ["c.test"], key: key,
                    notBefore: fixture.now - 3600, notAfter: fixture.now + 86_400 * 30).pem
            }
            try writeFile(path, file == .fullchain ? pem + String(decoding: other(.chain), as: UTF8.self) : pem)
        case "sparse-2g":
            let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
            try #require(fd >= 0)
            #expect(ftruncate(fd, 2 << 30) == 0)
            close(fd)
        case "big":
            try writeFile(path, String(repeating: pemText, count: (2 << 20) / max(1, original.count) + 1), mode: mode)
        case "fifo": try HostileFiles.replace(path, with: HostileFiles.makeFIFO)
        case "socket": try HostileFiles.replace(path, with: HostileFiles.makeSocket)
        case "directory": try HostileFiles.replace(path) { mkdir($0, 0o755) }
        case "dev", "proc", "link": try HostileFiles.replace(path) { symlink(argument, $0) }
        case "link-loop":
            // archive/cert1.pem → loop-a → cert1.pem
            try HostileFiles.replace(path) { symlink("loop-a", $0) }
            symlink(Paths.base(of: path), Paths.join(Paths.directory(of: path), "loop-a"))
        case "missing": unlink(path)
        case "mode": chmod(path, mode_t(argument, radix: 8) ?? 0o600)
        default: Issue.record("unknown op '\(op)'")
        }
    }

    /// Names, sizes, modes and link targets under a directory: what "changed nothing" compares.
    private func snapshot(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var lines: [String] = []
        while let entry = readdir(dir) {
            let name = direntName(entry)
            var info = stat()
            lstat(directory + "/" + name, &info)
            lines.append("\(name) \(info.st_mode) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)")
        }
        return lines.sorted()
    }
}

/// Runs argv (no shell) and returns what it wrote to stdout.
func runCapturing(_ argv: [String]) -> [UInt8] {
    var pipeFDs: [Int32] = [0, 0]
    guard pipe(&pipeFDs) == 0 else { return [] }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    var pid: pid_t = 0
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let spawned = posix_spawnp(&pid, argv[0], &actions, nil, &cArgs, environ)
    close(pipeFDs[1])
    defer { close(pipeFDs[0]) }
    guard spawned == 0 else { return [] }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(pipeFDs[0], &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        output += buffer.prefix(n)
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status == 0 ? output : []
}
