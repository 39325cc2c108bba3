import Testing

@testable import CertReload
@testable import CertReloadDemo

/// Follows a dotted path of already-split keys through nested tables.
private func value(_ table: TOMLTable, _ path: [String]) -> TOMLValue? {
    var current = table
    for key in path.dropLast() {
        guard let next = current[key]?.table else { return nil }
        current = next
    }
    return current[path.last!]
}

@Suite("TOML parser")
struct TOMLParserTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var document: String
        var path: [String]
        var expected: TOMLValue.Kind
        var testDescription: String { document }
    }

    static let valid: [Valid] = [
        .init(document: "a = 1", path: ["a"], expected: .integer(1)),
        .init(document: "a = -1_000", path: ["a"], expected: .integer(-1000)),
        .init(document: "a = +17", path: ["a"], expected: .integer(17)),
        .init(document: "a = 0xdead_beef", path: ["a"], expected: .integer(0xdead_beef)),
        .init(document: "a = 0o755", path: ["a"], expected: .integer(0o755)),
        .init(document: "a = 0b1010", path: ["a"], expected: .integer(10)),
        .init(document: "a = 3.5", path: ["a"], expected: .float(3.5)),
        .init(document: "a = 1e3", path: ["a"], expected: .float(1000)),
        .init(document: "a = -2.5E-1", path: ["a"], expected: .float(-0.25)),
        .init(document: "a = inf", path: ["a"], expected: .float(.infinity)),
        .init(document: "a = true", path: ["a"], expected: .boolean(true)),
        .init(document: "a = false # no", path: ["a"], expected: .boolean(false)),
        .init(document: #"a = "tab\there \"q\" \u00e9 \U0001F600""#, path: ["a"], expected: .string("tab\there \"q\" é 😀")),
        .init(document: #"a = 'C:\path\no escapes'"#, path: ["a"], expected: .string(#"C:\path\no escapes"#)),
        .init(document: "a = \"\"\"\nline one\nline two\"\"\"", path: ["a"], expected: .string("line one\nline two")),
        .init(document: "a = \"\"\"\nfolded \\\n    together\"\"\"", path: ["a"], expected: .string("folded together")),
        .init(document: "a = \"\"\"two \"\"quotes\"\"\"\"\"", path: ["a"], expected: .string("two \"\"quotes\"\"")),
        .init(document: "a = '''\nraw \\n\n'''", path: ["a"], expected: .string("raw \\n\n")),
        .init(document: "a = \"é\" # ünïcode comment", path: ["a"], expected: .string("é")),
        .init(document: "\"quoted key\" = 1", path: ["quoted key"], expected: .integer(1)),
        .init(document: "'lit.key' = 1", path: ["lit.key"], expected: .integer(1)),
        .init(document: "a . b.\"c\" = 1", path: ["a", "b", "c"], expected: .integer(1)),
        .init(document: "[t]\nx = 'y'", path: ["t", "x"], expected: .string("y")),
        .init(document: "[ t . u ]\nx = 2", path: ["t", "u", "x"], expected: .integer(2)),
        .init(document: "[a.b]\nx = 1\n[a]\ny = 2", path: ["a", "y"], expected: .integer(2)),
        .init(document: "[a]\nb.c = 1\n[a.b.d]\ne = 3", path: ["a", "b", "d", "e"], expected: .integer(3)),
        .init(document: "t = { x = 1, y.z = 'w' }", path: ["t", "y", "z"], expected: .string("w")),
        .init(document: "t = {}", path: ["t"], expected: .table(TOMLTable(line: 1, column: 5, origin: .inline))),
        .init(document: "a = []", path: ["a"], expected: .array([])),
        .init(document: "a = [ 1, 'two', ]", path: ["a"], expected: .array([.init(.integer(1), line: 1, column: 7), .init(.string("two"), line: 1, column: 10)])),
        .init(
            document: "a = [\n  1, # one\n  # nothing\n  2,\n]", path: ["a"],
            expected: .array([.init(.integer(1), line: 2, column: 3), .init(.integer(2), line: 4, column: 3)])),
        .init(document: "a = [[1], []]", path: ["a"], expected: .array([.init(.array([.init(.integer(1), line: 1, column: 7)]), line: 1, column: 6), .init(.array([]), line: 1, column: 11)])),
        .init(document: "\u{FEFF}a = 1\r\nb = 2\r\n", path: ["b"], expected: .integer(2)),
    ]

    @Test("valid documents give their values", arguments: valid)
    func parsesValid(_ example: Valid) throws {
        let table = try TOMLParser.parse(example.document, file: "t.toml")
        let found = try #require(value(table, example.path))
        switch (found.kind, example.expected) {
        case (.table(let got), .table(let want)):
            #expect(got.keys == want.keys)
        default:
            #expect(found.kind == example.expected)
        }
    }

    @Test("every key and value keeps its line and column")
    func keepsLines() throws {
        let document = """
            # comment
            top = 1

            [target.mail]
            lineages = ["a",
                        "b"]
              reload = { caddy = "http://x" }
            """
        let root = try TOMLParser.parse(document, file: "t.toml")
        #expect(root.entry("top")?.line == 2)
        let target = try #require(root["target"]?.table)
        #expect(target.line == 4)
        let mail = try #require(target["mail"]?.table)
        #expect(mail.line == 4)
        #expect(mail.entry("lineages")?.line == 5)
        let lineages = try #require(mail["lineages"]?.array)
        #expect(lineages.map(\.line) == [5, 6])
        #expect(lineages.map(\.column) == [13, 13])
        let reload = try #require(mail.entry("reload"))
        #expect(reload.line == 7 && reload.column == 3)
        #expect(reload.value.column == 12)
        #expect(reload.value.table?.entry("caddy")?.column == 14)
        #expect(mail.keys == ["lineages", "reload"])
    }

    @Test("a key's order follows the document")
    func keepsOrder() throws {
        let root = try TOMLParser.parse("[target.z]\n[target.a]\n[target.m]\n", file: "t.toml")
        #expect(root["target"]?.table?.keys == ["z", "a", "m"])
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var document: String
        var line: Int
        var column: Int
        var message: String
        var testDescription: String { document }
    }

    static let invalid: [Invalid] = [
        .init(document: "a = ", line: 1, column: 5, message: "expected a value after '='"),
        .init(document: "a 1", line: 1, column: 3, message: "expected '=' after the key 'a'"),
        .init(document: "ok = 1\na = hello", line: 2, column: 5, message: "strings need quotes: \"hello\""),
        .init(document: "a = \"open", line: 1, column: 5, message: "not closed"),
        .init(document: "a = 'open\nb = 1", line: 1, column: 5, message: "not closed"),
        .init(document: "a = \"\"\"never\nclosed", line: 1, column: 5, message: "never closed"),
        .init(document: "a = 1 b = 2", line: 1, column: 7, message: "expected the end of the line"),
        .init(document: "a = [1, 2", line: 1, column: 5, message: "never closed with ']'"),
        .init(document: "a = [1 2]", line: 1, column: 8, message: "expected ',' or ']'"),
        .init(document: "a = { x = 1,\n y = 2 }", line: 1, column: 13, message: "must stay on one line"),
        .init(document: "a = { x = 1, }", line: 1, column: 14, message: "trailing comma"),
        .init(document: "a = { x = 1 y = 2 }", line: 1, column: 13, message: "expected ',' or '}'"),
        .init(document: "a = 1\na = 2", line: 2, column: 1, message: "duplicate key 'a' (first set on line 1)"),
        .init(document: "t = { a = 1, a = 2 }", line: 1, column: 14, message: "duplicate key 'a'"),
        .init(document: "[t]\n[u]\n[t]", line: 3, column: 1, message: "table 't' is defined twice (first on line 1)"),
        .init(document: "[t]\nx.y = 1\n[t.x]", line: 3, column: 1, message: "defined twice"),
        .init(document: "t = 1\n[t]", line: 2, column: 2, message: "'t' is already a integer"),
        .init(document: "t = { a = 1 }\n[t.b]", line: 2, column: 2, message: "inline table"),
        .init(document: "[a.b]\n[a]\nb.c = 1", line: 3, column: 1, message: "already defined on line 1"),
        .init(document: "[[servers]]", line: 1, column: 1, message: "arrays of tables"),
        .init(document: "[t", line: 1, column: 3, message: "expected ']'"),
        .init(document: "a = \"bad \\x escape\"", line: 1, column: 10, message: "unknown escape '\\x'"),
        .init(document: "a = \"\\u12\"", line: 1, column: 6, message: "4 hex digits"),
        .init(document: "a = 1979-05-27", line: 1, column: 5, message: "dates and times"),
        .init(document: "a = 012", line: 1, column: 5, message: "leading zeros"),
        .init(document: "a = 1__0", line: 1, column: 5, message: "expected a value"),
        .init(document: "a = 1.", line: 1, column: 5, message: "expected a number"),
        .init(document: "a = 99999999999999999999", line: 1, column: 5, message: "out of range"),
        .init(document: "a = tru", line: 1, column: 5, message: "expected a value"),
        .init(document: "= 1", line: 1, column: 1, message: "expected a key"),
        .init(document: "a.\"\"\"x\"\"\" = 1", line: 1, column: 3, message: "multi-line strings cannot be keys"),
        .init(document: "a = \"ctl\u{01}\"", line: 1, column: 9, message: "control character"),
        .init(document: "é = 1", line: 1, column: 1, message: "expected a key"),
        .init(document: "a = \"é\" b", line: 1, column: 9, message: "expected the end of the line"),
    ]

    @Test("invalid documents name line, column and what was expected", arguments: invalid)
    func rejectsInvalid(_ example: Invalid) {
        #expect {
            _ = try TOMLParser.parse(example.document, file: "bad.toml")
        } throws: { error in
            guard let error = error as? TOMLError else { return false }
            return error.file == "bad.toml" && error.line == example.line && error.column == example.column
                && error.message.contains(example.message)
        }
        // Say what was thrown when the expectation above fails.
        do {
            _ = try TOMLParser.parse(example.document, file: "bad.toml")
        } catch {
            #expect(error.line == example.line, "\(error)")
            #expect(error.column == example.column, "\(error)")
            #expect(error.message.contains(example.message), "\(error)")
        }
    }

    @Test("invalid UTF-8 is refused at its line")
    func invalidUTF8() {
        var bytes = Array("a = 1\nb = \"".utf8)
        bytes += [0xFF, UInt8(ascii: "\"")]
        #expect(throws: TOMLError(file: "x.toml", line: 2, column: 6, message: "the file is not valid UTF-8")) {
            _ = try TOMLParser.parse(bytes, file: "x.toml")
        }
    }

    @Test("the error text is FILE:LINE:COLUMN: message")
    func errorText() {
        let error = TOMLError(file: "certreload.toml", line: 3, column: 7, message: "expected a value after '='")
        #expect(error.description == "certreload.toml:3:7: expected a value after '='")
    }
}
