@testable import CertReload
import CertReloadDemo
import Glibc
import Testing

/// The bad-configuration corpus (Tests/Corpus/config.tsv): each file gets its error code,
/// with a line where there is one, and nothing hangs or crashes.
@Suite("Reliability: bad-configuration corpus")
struct ConfigCorpusTests {
    static let cases = CorpusCase.load("config.tsv")
    static let base = "[target.web]\nlineages = [\"example.com\"]\nreload = { signal = \"HUP\", pidfile = \"/run/nginx.pid\" }"

    @Test("the corpus has at least 60 configuration cases")
    func size() { #expect(Self.cases.count >= 60) }

    @Test("a broken configuration gets its error code", arguments: cases)
    func brokenConfiguration(_ corpusCase: CorpusCase) throws {
        let root = try FileTree.makeTemporaryDirectory(prefix: "certreload-config-corpus")
        defer { FileTree.remove(root) }
        let path = root + "/certreload.toml"
        let recipe = corpusCase.recipe
        if recipe.hasPrefix("toml:") {
            try writeBytes(path, Self.unescape(String(recipe.dropFirst(5)).replacingBase(Self.base)))
        } else if recipe.hasPrefix("gen:") {
            let parts = recipe.split(separator: ":")
            try writeBytes(path, Self.generate(String(parts[1]), count: Int(parts[2]) ?? 0))
        } else if recipe.hasPrefix("file:") {
            try Self.makeFile(String(recipe.dropFirst(5)), at: path)
        } else if recipe.hasPrefix("token:") {
            let token = root + "/stalwart.token"
            switch recipe.dropFirst(6) {
            case "mode-644": try writeBytes(token, Array("API_corpus-secret\n".utf8), mode: 0o644)
            case "fifo": guard mkfifo(token, 0o600) == 0 else { throw SystemError("mkfifo", path: token) }
            case "directory": mkdir(token, 0o700)
            default: symlink("/dev/zero", token)
            }
            try writeBytes(path, Array("[target.mail]\nlineages = [\"example.com\"]\nreload = { stalwart = \"http://127.0.0.1:8080\", token-file = \"\(token)\" }\n".utf8))
        }
        let result = ConfigurationLoader.validate(path: path)
        let first = result.errors.first
        if corpusCase.expected == "ok" {
            #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        } else {
            let error = try #require(first, "no error for \(corpusCase.name)")
            #expect(error.code.rawValue == corpusCase.expected, "\(error)")
            #expect(error.location.file == path)
            if error.code != .unreadable { #expect(error.location.line > 0, "names a line: \(error)") }
            #expect(result.configuration == nil, "a configuration with errors is not used")
            #expect(!error.description.contains("corpus-secret"), "no token in the message")
            // Messages are one line, so a hostile value cannot forge a log line.
            #expect(!error.description.contains("\n"), "one line: \(error.description)")
            // A huge value is quoted clipped: the error stays readable (key, message and fix).
            #expect(error.description.utf8.count + (error.fix?.utf8.count ?? 0) <= 4096, "\(error.description.prefix(200))…")
        }
    }

    /// \n, \t, \r and \xHH escapes, and \\ for a backslash.
    static func unescape(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                let next = bytes[index + 1]
                switch next {
                case UInt8(ascii: "n"): out.append(10); index += 2; continue
                case UInt8(ascii: "t"): out.append(9); index += 2; continue
                case UInt8(ascii: "r"): out.append(13); index += 2; continue
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); index += 2; continue
                case UInt8(ascii: "x") where index + 3 < bytes.count:
                    if let value = UInt8(String(decoding: bytes[(index + 2)...(index + 3)], as: UTF8.self), radix: 16) {
                        out.append(value); index += 4; continue
                    }
                default: break
                }
            }
            out.append(byte)
            index += 1
        }
        return out
    }

    static func generate(_ kind: String, count: Int) -> [UInt8] {
        switch kind {
        case "deep-arrays": return Array(("x = " + String(repeating: "[", count: count)).utf8)
        case "deep-tables": return Array(("x = " + String(repeating: "{ a = ", count: count)).utf8)
        case "long-string":
            return Array(("[target.web]\nlineages = [\"example.com\"]\nhostnames = [\"" + String(repeating: "a", count: count)
                + "\"]\nreload = { systemd = \"nginx.service\" }\n").utf8)
        case "long-key": return Array((String(repeating: "k", count: count) + " = 1\n").utf8)
        case "many-lineages":
            let names = (0..<count).map { "\"host\($0).customer-domain.example.net\"" }.joined(separator: ", ")
            return Array("[target.web]\nlineages = [\(names)]\nreload = { systemd = \"nginx.service\" }\n".utf8)
        case "many-targets":
            return Array((0..<count).map { "[target.t\($0)]\nlineages = [\"example.com\"]\nreload = { systemd = \"t\($0).service\" }\n" }.joined().utf8)
        default: return []
        }
    }

    static func makeFile(_ kind: String, at path: String) throws {
        switch kind {
        case "empty": try writeBytes(path, [])
        case "fifo": try HostileFiles.makeFIFO(path)
        case "socket": try HostileFiles.makeSocket(path)
        case "directory": mkdir(path, 0o755)
        case "dev-zero": symlink("/dev/zero", path)
        case "dev-urandom": symlink("/dev/urandom", path)
        case "link-loop": symlink(Paths.base(of: path), path)
        case "sparse-2g":
            try writeBytes(path, [])
            #expect(truncate(path, 2 << 30) == 0)
        default: break  // missing
        }
    }
}

extension String {
    func replacingBase(_ base: String) -> String { replacing("BASE", with: base) }
}
