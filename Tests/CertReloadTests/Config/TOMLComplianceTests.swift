import Testing

@testable import CertReload

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The official toml-test suite (TOML 1.0) against certreload's parser: every valid document
/// it supports parses to exactly the expected values, and every invalid document is refused.
///
/// The cases are read at test time from `$TOML_TEST_DIR` (`Tests/toml-test/fetch` puts them in
/// `.build/toml-test/`; `scripts/test` sets the variable). What the parser does not support —
/// dates and times, arrays of tables — is counted and must be refused, never misread.
@Suite("TOML: the toml-test suite", .enabled(if: TOMLCompliance.directory != nil, "set TOML_TEST_DIR (Tests/toml-test/fetch)"))
struct TOMLComplianceTests {
    @Test("valid documents parse to the expected values; unsupported ones are refused at their place")
    func valid() throws {
        let root = try #require(TOMLCompliance.directory) + "/valid"
        let cases = TOMLCompliance.files(under: root, suffix: ".toml")
        try #require(cases.count >= 90, "expected the toml-test valid cases under \(root), found \(cases.count)")
        var passed = 0
        var unsupported: [String] = []
        for path in cases {
            let name = String(path.dropFirst(root.count + 1))
            let bytes = try TOMLCompliance.contents(path)
            let expected = try JSONParser.parse(try TOMLCompliance.contents(String(path.dropLast(5)) + ".json"))
            if TOMLCompliance.usesUnsupported(expected) || bytes.starts(with: Array("[[".utf8))
                || String(decoding: bytes, as: UTF8.self).contains("\n[[")
            {
                unsupported.append(name)
                #expect(throws: TOMLError.self, "\(name) uses what the parser does not support and must be refused") {
                    _ = try TOMLParser.parse(bytes, file: name)
                }
                continue
            }
            do {
                let table = try TOMLParser.parse(bytes, file: name)
                let got = TOMLCompliance.tagged(table)
                #expect(TOMLCompliance.same(got, expected), "\(name): got \(got.serialized(pretty: false)), expected \(expected.serialized(pretty: false))")
                if TOMLCompliance.same(got, expected) { passed += 1 }
            } catch {
                Issue.record("\(name) is valid TOML 1.0 but was refused: \(error)")
            }
        }
        print("toml-test valid: \(passed) of \(cases.count) parsed to the expected values; \(unsupported.count) use dates/times or arrays of tables and were refused: \(unsupported.joined(separator: ", "))")
        #expect(passed + unsupported.count == cases.count)
    }

    @Test("invalid documents are refused")
    func invalid() throws {
        let root = try #require(TOMLCompliance.directory) + "/invalid"
        let cases = TOMLCompliance.files(under: root, suffix: ".toml")
        try #require(cases.count >= 150, "expected the toml-test invalid cases under \(root), found \(cases.count)")
        var accepted: [String] = []
        for path in cases {
            let name = String(path.dropFirst(root.count + 1))
            if (try? TOMLParser.parse(try TOMLCompliance.contents(path), file: name)) != nil { accepted.append(name) }
        }
        print("toml-test invalid: \(cases.count - accepted.count) of \(cases.count) refused")
        #expect(accepted.isEmpty, "invalid TOML accepted: \(accepted.joined(separator: ", "))")
    }
}

enum TOMLCompliance {
    static var directory: String? {
        guard let value = getenv("TOML_TEST_DIR").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        return value
    }

    static func files(under directory: String, suffix: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var found: [String] = []
        while let entry = readdir(handle) {
            let name = direntName(entry)
            if name == "." || name == ".." { continue }
            let path = directory + "/" + name
            if entry.pointee.d_type == UInt8(DT_DIR) {
                found += files(under: path, suffix: suffix)
            } else if name.hasSuffix(suffix) {
                found.append(path)
            }
        }
        return found.sorted()
    }

    static func contents(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TestSupportError("open \(path): errno \(errno)") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer.prefix(count)
        }
        return bytes
    }

    /// A date or time anywhere in the expected values.
    static func usesUnsupported(_ json: JSON) -> Bool {
        switch json {
        case .object(let pairs):
            if let type = pairs.first(where: { $0.0 == "type" })?.1, case .string(let name) = type,
                name.hasPrefix("datetime") || name.hasPrefix("date") || name.hasPrefix("time")
            {
                return true
            }
            return pairs.contains { usesUnsupported($0.1) }
        case .array(let values): return values.contains(where: usesUnsupported)
        default: return false
        }
    }

    /// The parsed document in toml-test's tagged JSON: `{"type": "integer", "value": "1"}`.
    static func tagged(_ table: TOMLTable) -> JSON {
        .object(table.entries.map { ($0.key, tagged($0.value)) })
    }

    static func tagged(_ value: TOMLValue) -> JSON {
        switch value.kind {
        case .string(let text): return leaf("string", text)
        case .integer(let number): return leaf("integer", String(number))
        case .float(let number): return leaf("float", number.isNaN ? "nan" : number.isInfinite ? (number < 0 ? "-inf" : "inf") : "\(number)")
        case .boolean(let flag): return leaf("bool", flag ? "true" : "false")
        case .array(let values): return .array(values.map(tagged))
        case .table(let table): return tagged(table)
        }
    }

    private static func leaf(_ type: String, _ value: String) -> JSON {
        .object([("type", .string(type)), ("value", .string(value))])
    }

    /// Equal as TOML values: objects regardless of key order, floats by value.
    static func same(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            if let type = x.first(where: { $0.0 == "type" })?.1, x.count == 2, y.count == 2,
                case .string(let ta) = type, case .string(let tb)? = y.first(where: { $0.0 == "type" })?.1,
                case .string(let va)? = x.first(where: { $0.0 == "value" })?.1,
                case .string(let vb)? = y.first(where: { $0.0 == "value" })?.1
            {
                guard ta == tb else { return false }
                if ta == "float" { return sameFloat(va, vb) }
                return va == vb
            }
            guard x.count == y.count else { return false }
            let right = Dictionary(y, uniquingKeysWith: { first, _ in first })
            return x.allSatisfy { key, value in right[key].map { same(value, $0) } ?? false }
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy(same)
        default:
            return a == b
        }
    }

    private static func sameFloat(_ a: String, _ b: String) -> Bool {
        func value(_ text: String) -> Double? {
            switch text {
            case "nan", "+nan", "-nan": return .nan
            case "inf", "+inf": return .infinity
            case "-inf": return -.infinity
            default: return Double(text)
            }
        }
        guard let x = value(a), let y = value(b) else { return a == b }
        return (x.isNaN && y.isNaN) || x == y
    }
}
