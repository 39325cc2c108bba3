@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// Hostile lineage names (Tests/Corpus/names.tsv): refused or unknown, never a path outside live/.
@Suite("Reliability: hostile lineage names")
struct LineageNameCorpusTests {
    static let cases = CorpusCase.load("names.tsv")

    @Test("a hostile lineage name is refused or unknown", arguments: cases)
    func hostileName(_ corpusCase: CorpusCase) throws {
        let fixture = try LineageFixture()
        defer { fixture.remove() }
        try fixture.issue("c.test")
        var name = String(decoding: ConfigCorpusTests.unescape(corpusCase.recipe), as: UTF8.self)
        if name.hasPrefix("L*"), let count = Int(name.dropFirst(2)) { name = String(repeating: "L", count: count) }
        if name.hasPrefix("live/") { name = fixture.config + "/" + name }
        do {
            let source = try fixture.directory.lineage(name)
            #expect(corpusCase.expected == "missing", "accepted \(source.path)")
            let report = try Checker(options: CheckOptions(now: fixture.now)).check([source]).lineages[0]
            #expect(report.codes.contains(.missing) || report.codes.contains(.danglingLink), "\(report.codes)")
            #expect(!report.usable)
        } catch let error as UsageError {
            let message = error.message
            #expect(!message.contains("\n") && !message.contains("\u{1b}"), "one clean line: \(message)")
            if corpusCase.expected == "usage-error" {
                #expect(message.contains("is not a lineage"), "\(message)")
            } else {
                #expect(corpusCase.expected == "unknown", "\(message)")
                #expect(message.hasPrefix("unknown lineage"), "\(message)")
            }
        }
    }
}
