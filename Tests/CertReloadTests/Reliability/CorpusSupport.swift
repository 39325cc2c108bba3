@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// One line of a corpus file under Tests/Corpus/: a name, a recipe, the expected outcome.
struct CorpusCase: Sendable, CustomTestStringConvertible {
    var name: String
    var recipe: String
    var expected: String
    var testDescription: String { "\(name): \(recipe) → \(expected)" }

    /// The cases of `Tests/Corpus/<file>` (lines starting with # are comments).
    static func load(_ file: String) -> [CorpusCase] {
        guard case .success(let bytes) = SafeFile.read(corpusDirectory + "/" + file) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3 else { return nil }
            return CorpusCase(name: fields[0], recipe: fields[1], expected: fields[2])
        }
    }

    /// The recipe's steps, split at " ; ".
    var steps: [String] {
        recipe.split(separator: ";").map { String($0).trimmingCharacters(in: " ") }.filter { !$0.isEmpty }
    }
}

/// Tests/Corpus, found from this source file's path (swift test runs from the package root,
/// but a filter run from elsewhere still finds it).
let corpusDirectory: String = {
    var path = #filePath
    for _ in 0..<3 { path = Paths.directory(of: path) }  // …/Tests/CertReloadTests/Reliability/x.swift → …/Tests
    return path + "/Corpus"
}()

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var slice = self[...]
        while slice.first == set { slice = slice.dropFirst() }
        while slice.last == set { slice = slice.dropLast() }
        return String(slice)
    }
}

func writeBytes(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SystemError("open", path: path) }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        guard n > 0 else { throw SystemError("write", path: path) }
        offset += n
    }
    fchmod(fd, mode)
}

func readBytes(_ path: String) -> [UInt8] {
    if case .success(let bytes) = SafeFile.read(path, limit: 1 << 24) { return bytes }
    return []
}
