@testable import CertReload
@testable import CertReloadDemo
import Glibc
import Testing

@Suite("doctor: ports, sockets, what is on disk")
struct DoctorTests {
    @Test("SCHEME=PORT parses; anything else is a usage error")
    func portSpec() throws {
        let port = try DoctorPort(parsing: "SMTP=2525")
        #expect(port == DoctorPort(scheme: "smtp", port: 2525, explicit: true))
        for bad in ["smtp", "smtp=0", "smtp=70000", "gopher=70", "=25"] {
            #expect(throws: UsageError.self) { try DoctorPort(parsing: bad) }
        }
        #expect(DoctorPort.defaults.map { "\($0.scheme)=\($0.port)" } == [
            "smtp=25", "submission=587", "smtps=465", "imap=143", "imaps=993", "pop3=110", "pop3s=995", "https=443",
        ])
    }

    @Test("/proc/net/tcp and tcp6: only LISTEN rows, addresses and ports decoded")
    func procNetTCP() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4242 1 0000000000000000 100 0 0 10 0
               1: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
               2: 0100007F:0019 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   998        0 0 1 0000000000000000 20 4 30 10 -1
            """
        let sockets = SocketOwners.parse(tcp)
        #expect(sockets == [
            ListeningSocket(address: "127.0.0.1", port: 25, uid: 998, inode: 4242),
            ListeningSocket(address: "0.0.0.0", port: 443, uid: 0, inode: 4343),
        ])
        let tcp6 = """
              sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000000000000000000000000000:03E1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 5151 1 0000000000000000 100 0 0 10 0
               1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 5252 1 0000000000000000 100 0 0 10 0
            """
        #expect(SocketOwners.parse(tcp6) == [
            ListeningSocket(address: "::", port: 993, uid: 998, inode: 5151),
            ListeningSocket(address: "::1", port: 80, uid: 33, inode: 5252),
        ])
    }

    @Test("a socket is matched to the address dialled: bound there, or a wildcard on a local address")
    func ownerMatch() {
        let sockets = [
            ListeningSocket(address: "10.9.9.9", port: 25, uid: 1, inode: 1),
            ListeningSocket(address: "0.0.0.0", port: 993, uid: 0, inode: 2),
        ]
        #expect(SocketOwners.owner(port: 25, dialled: "127.0.0.1", sockets: sockets, holders: [:]) == nil)
        #expect(SocketOwners.owner(port: 25, dialled: "10.9.9.9", sockets: sockets, holders: [:])?.uid == 1)
        let owner = SocketOwners.owner(port: 993, dialled: "127.0.0.1", sockets: sockets, holders: [2: [900, 77]], parent: { _ in 1 })
        #expect(owner?.pid == 77)
        #expect(owner?.pids == [77, 900])
    }

    @Test("the master is the holder whose parent holds no copy, not the lowest pid (pids wrap)")
    func ownerMaster() {
        let sockets = [ListeningSocket(address: "0.0.0.0", port: 25, uid: 0, inode: 7)]
        // Postfix after a pid wrap: master 32681 (parent 1), its smtpd 404 inherited the socket.
        let parents: [Int32: Int32] = [32681: 1, 404: 32681, 405: 32681]
        let owner = SocketOwners.owner(port: 25, dialled: "127.0.0.1", sockets: sockets, holders: [7: [404, 32681, 405]], parent: { parents[$0] })
        #expect(owner?.pid == 32681)
        #expect(owner?.pids == [404, 405, 32681])
        // A process gone before its parent was read counts as a root; two roots: the lowest.
        #expect(SocketOwners.master(of: [10, 20, 30], parent: { [20: 10, 30: 99][$0] }) == 10)
        #expect(SocketOwners.master(of: [50, 60], parent: { [50: 60][$0] }) == 60)
    }

    @Test("a parent pid is read from /proc/PID/stat, past a name with spaces and parentheses")
    func parentFromProc() {
        #expect(SocketOwners.parentPID(stat: Array("404 (smtpd) S 32681 32681 32681 0 -1".utf8)) == 32681)
        #expect(SocketOwners.parentPID(stat: Array("77 (a) b (c)) R 12 77 77 0".utf8)) == 12)
        #expect(SocketOwners.parentPID(stat: Array("77 (no close S 12".utf8)) == nil)
        #expect(SocketOwners.parentPID(getpid()) == getppid())
        #expect(SocketOwners.parentPID(1) == 0)
        #expect(SocketOwners.parentPID(-5) == nil)
    }

    @Test("this process's own listening socket is found with its pid and name")
    func ownSocket() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0 && listen(fd, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        let sockets = SocketOwners.listening()
        let owner = SocketOwners.owner(port: port, dialled: "127.0.0.1", sockets: sockets, holders: SocketOwners.holders(of: Set(sockets.map(\.inode))))
        #expect(owner?.uid == geteuid())
        #expect(owner?.pids.contains(getpid()) == true)
    }

    @Test("a served leaf is the current version, an older one (not reloaded), or nothing on disk")
    func diskMatch() {
        func cert(_ version: Int, _ sha: String, written: Int64) -> ArchivedCertificate {
            ArchivedCertificate(lineage: "example.com", version: version, path: "/a/cert\(version).pem", sha256: sha,
                                subjectAltNames: ["example.com", "*.example.com"], notAfter: nil, writtenAt: written)
        }
        let disk = DiskCertificates(
            certificates: [cert(1, "aa", written: 100), cert(2, "bb", written: 200)],
            currentVersions: ["example.com": 2], lineageNames: ["example.com"])
        #expect(disk.match(sha256: "bb") == .current(lineage: "example.com", version: 2))
        #expect(disk.match(sha256: "aa") == .older(lineage: "example.com", version: 1, current: 2, currentSince: 200))
        #expect(disk.match(sha256: "cc") == .none)
        #expect(disk.lineages(covering: "mail.example.com").map(\.wildcard) == [true])
        #expect(disk.lineages(covering: "example.com").map(\.wildcard) == [false])
        #expect(disk.lineages(covering: "a.b.example.com").isEmpty)
    }

    @Test("a closed port is closed, an error only when named with --port")
    func closedPort() async throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "doctor")
        defer { FileTree.remove(root) }
        mkdir(root + "/live", 0o755)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(fd)  // bound, never listened, closed: nothing accepts on it

        for explicit in [false, true] {
            let doctor = Doctor(
                host: "mail.example.test", connect: "127.0.0.1",
                ports: [DoctorPort(scheme: "imaps", port: port, explicit: explicit)], certbot: CertbotDirectory(root))
            let report = await doctor.run()
            #expect(report.rows.first?.state == .closed)
            #expect(report.problems.map(\.code) == (explicit ? [.verifyConnectFailed] : []))
            #expect(report.healthy == !explicit)
            #expect(report.plan.last?.hasPrefix("prove it: certreload doctor mail.example.test") == true)
        }
    }
}

@Suite("doctor against real TLS peers on loopback")
struct DoctorPeerTests {
    @Test("an implicit-TLS port named as STARTTLS: the hint, and the leaf from an implicit probe")
    func implicitProbedAsStartTLS() async throws {
        let fixture = try ProbeFixture()
        let server = try LoopbackPeer.openSSLServer(
            certificate: fixture.path("cert.pem"), key: fixture.path("privkey.pem"), chain: fixture.path("chain.pem"),
            directory: fixture.directory)
        let root = try FileTree.makeTemporaryDirectory(prefix: "doctor")
        defer { FileTree.remove(root) }
        mkdir(root + "/live", 0o755)
        var doctor = Doctor(
            host: "mail.example.test", connect: "127.0.0.1",
            ports: [DoctorPort(scheme: "submission", port: Int(server.port), explicit: true)],
            certbot: CertbotDirectory(root), caFile: fixture.path("root.pem"))
        doctor.timeout = 1.5
        let report = await doctor.run()
        let row = try #require(report.rows.first)
        #expect(row.transport == "implicit TLS")
        #expect(row.hint?.contains("smtps=\(server.port)") == true)
        #expect(row.withSNI?.sha256 == fixture.leaf.sha256)
        #expect(row.withSNI?.disk == DiskMatch.none)
        #expect(report.problems.map(\.code).contains(.verifyWrongCertificate))
    }

    @Test("a STARTTLS server that does not offer it: plaintext, its words quoted, starttls-not-offered")
    func startTLSNotOffered() async throws {
        let fixture = try ProbeFixture()
        let server = try LoopbackPeer.startTLSServer(
            ["--protocol", "imap", "--starttls", "absent", "--cert", fixture.path("fullchain.pem"), "--key", fixture.path("privkey.pem")],
            directory: fixture.directory)
        let root = try FileTree.makeTemporaryDirectory(prefix: "doctor")
        defer { FileTree.remove(root) }
        mkdir(root + "/live", 0o755)
        let doctor = Doctor(
            host: "mail.example.test", connect: "127.0.0.1",
            ports: [DoctorPort(scheme: "imap", port: Int(server.port), explicit: true)], certbot: CertbotDirectory(root))
        let report = await doctor.run()
        let row = try #require(report.rows.first)
        #expect(row.transport == "plaintext")
        #expect(row.startTLSOffered == false)
        #expect(!row.serverSaid.isEmpty)
        let problem = try #require(report.problems.first { $0.code == .starttlsNotOffered })
        #expect(problem.message.contains("CAPABILITY"))
        #expect(!report.healthy)
    }
}
