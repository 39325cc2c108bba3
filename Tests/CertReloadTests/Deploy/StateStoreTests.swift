import CertReload
import Glibc
import Testing

@Suite("Per-target state")
struct StateStoreTests {
    @Test("state round-trips, a missing file is an empty state, no temporary file is left")
    func roundTrip() throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-state")
        defer { FileTree.remove(root) }
        let store = StateStore(directory: root + "/state")
        #expect(store.load("mail") == TargetState(target: "mail"))
        var state = TargetState(target: "mail")
        state.deployedSHA256 = "ab" + String(repeating: "0", count: 62)
        state.deployedAt = 1_800_000_000
        state.verifiedSHA256 = state.deployedSHA256
        state.verifiedAt = 1_800_000_005
        try store.save(state)
        #expect(store.load("mail") == state)
        state.verifiedSHA256 = nil
        try store.save(state)
        #expect(store.load("mail").verifiedSHA256 == nil)
        let dir = try #require(opendir(root + "/state"))
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(direntName(entry))
        }
        closedir(dir)
        #expect(names.filter { !$0.hasPrefix(".") } == ["mail.state"])
    }

    @Test("an unwritable state directory is an error naming it")
    func unwritable() throws {
        let store = StateStore(directory: "/proc/certreload-cannot-exist")
        #expect(throws: SystemError.self) { try store.save(TargetState(target: "x")) }
    }
}
