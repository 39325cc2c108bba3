/// A syntax error in a TOML document: where it is and what was expected there.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file name used in messages.
    public var file: String
    public var line: Int
    /// 1-based, counted in Unicode scalars.
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A TOML value and the line and column where it starts.
public struct TOMLValue: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case float(Double)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var kind: Kind
    public var line: Int
    public var column: Int

    public init(_ kind: Kind, line: Int, column: Int) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    /// "string", "integer", "array", … as TOML calls them, for messages.
    public var typeName: String {
        switch kind {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }

    public var string: String? { if case .string(let value) = kind { return value } else { return nil } }
    public var integer: Int? { if case .integer(let value) = kind { return value } else { return nil } }
    public var boolean: Bool? { if case .boolean(let value) = kind { return value } else { return nil } }
    public var array: [TOMLValue]? { if case .array(let value) = kind { return value } else { return nil } }
    public var table: TOMLTable? { if case .table(let value) = kind { return value } else { return nil } }
    /// An integer or a float, as a Double.
    public var number: Double? {
        switch kind {
        case .integer(let value): return Double(value)
        case .float(let value): return value
        default: return nil
        }
    }
}

/// A TOML table: keys in the order the document wrote them, each with the line of its key.
public struct TOMLTable: Sendable, Equatable {
    /// How a table came to exist, which decides whether it may be added to later.
    enum Origin: Sendable, Equatable {
        /// Created as the parent of a `[a.b]` header; `[a]` may still define it once.
        case implicit
        /// Defined by a `[header]`.
        case header
        /// Created by a dotted key `a.b = 1`.
        case dotted
        /// An inline table `{ … }`: closed once written.
        case inline
        case root
    }

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: TOMLValue
        /// Where the key was written (for a table defined by a header: the header).
        public var line: Int
        public var column: Int
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    /// Where the table was defined: its header, the `{` of an inline table, or the first key.
    public internal(set) var line: Int
    public internal(set) var column: Int
    var origin: Origin

    init(line: Int, column: Int, origin: Origin) {
        self.line = line
        self.column = column
        self.origin = origin
    }

    public var keys: [String] { entries.map(\.key) }
    public var isEmpty: Bool { entries.isEmpty }

    public subscript(key: String) -> TOMLValue? {
        index[key].map { entries[$0].value }
    }

    public func entry(_ key: String) -> Entry? {
        index[key].map { entries[$0] }
    }

    mutating func append(_ entry: Entry) {
        index[entry.key] = entries.count
        entries.append(entry)
    }

    /// Replaces the value of an existing key in place (used while building nested tables).
    mutating func modify<R>(_ key: String, _ body: (inout Entry) throws(TOMLError) -> R) throws(TOMLError) -> R {
        let position = index[key]!
        return try body(&entries[position])
    }
}

/// A TOML 1.0 parser for configuration files, keeping the line and column of every key and value.
///
/// Covers comments, bare/quoted/dotted keys, all four string forms, integers (decimal, hex,
/// octal, binary, with `_`), floats, booleans, arrays, inline tables and `[table]` headers.
/// It does not support arrays of tables (`[[x]]`) or dates and times: both are reported
/// as errors at their place.
public struct TOMLParser {
    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    private var line = 1
    private var column = 1
    /// Arrays and inline tables open right now; past `maximumNesting` the parser stops, so a
    /// hostile file cannot exhaust the stack with recursion.
    private var nesting = 0
    static let maximumNesting = 64

    /// Parses a document; `file` names it in error messages.
    public static func parse(_ bytes: [UInt8], file: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: bytes, file: file)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String, file: String) throws(TOMLError) -> TOMLTable {
        try parse(Array(text.utf8), file: file)
    }

    private init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    private struct KeyPart {
        var name: String
        var line: Int
        var column: Int
    }

    // MARK: Document

    private mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        try checkEncoding()
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }  // a byte order mark
        var root = TOMLTable(line: 1, column: 1, origin: .root)
        var current: [KeyPart] = []
        while true {
            skipWhitespace()
            guard let byte = peek() else { break }
            switch byte {
            case UInt8(ascii: "#"):
                try skipComment()
            case UInt8(ascii: "\n"):
                advanceNewline()
            case UInt8(ascii: "\r"):
                try expectNewline()
            case UInt8(ascii: "["):
                let startLine = line, startColumn = column
                advance()
                if peek() == UInt8(ascii: "[") {
                    throw error(
                        "arrays of tables ([[…]]) are not supported in certreload's configuration; use [name] tables",
                        line: startLine, column: startColumn)
                }
                skipWhitespace()
                let path = try parseKey()
                skipWhitespace()
                guard peek() == UInt8(ascii: "]") else { throw expected("']' to close the table header") }
                advance()
                try endOfLine()
                try Self.defineTable(in: &root, path: path[...], line: startLine, column: startColumn, file: file)
                current = path
            default:
                let (key, value) = try parseKeyValue()
                try endOfLine()
                try Self.insert(value, in: &root, at: (current + key)[...], prefix: current.count, file: file)
            }
        }
        return root
    }

    /// `[a.b.c]`: walks through a and b (creating them implicitly) and defines c.
    private static func defineTable(
        in table: inout TOMLTable, path: ArraySlice<KeyPart>, line: Int, column: Int, file: String
    ) throws(TOMLError) {
        let part = path.first!
        let rest = path.dropFirst()
        if table.entry(part.name) == nil {
            let origin: TOMLTable.Origin = rest.isEmpty ? .header : .implicit
            table.append(
                .init(
                    key: part.name,
                    value: TOMLValue(.table(TOMLTable(line: line, column: column, origin: origin)), line: line, column: column),
                    line: line, column: column))
            if rest.isEmpty { return }
        }
        try table.modify(part.name) { (entry: inout TOMLTable.Entry) throws(TOMLError) in
            guard case .table(var child) = entry.value.kind else {
                throw TOMLError(
                    file: file, line: part.line, column: part.column,
                    message: "'\(part.name)' is already a \(entry.value.typeName) (line \(entry.line)), not a table")
            }
            if rest.isEmpty {
                guard child.origin == .implicit else {
                    throw TOMLError(
                        file: file, line: line, column: column,
                        message: "table '\(part.name)' is defined twice (first on line \(child.line))")
                }
                child.origin = .header
                child.line = line
                child.column = column
                entry.line = line
                entry.column = column
            } else {
                if child.origin == .inline {
                    throw TOMLError(
                        file: file, line: part.line, column: part.column,
                        message: "'\(part.name)' is an inline table (line \(child.line)) and cannot be extended by a header")
                }
                try defineTable(in: &child, path: rest, line: line, column: column, file: file)
            }
            entry.value.kind = .table(child)
        }
    }

    /// `a.b.c = value` inside the current table: the first `prefix` parts name the current
    /// table (from its header); the rest may create dotted tables.
    private static func insert(
        _ value: TOMLValue, in table: inout TOMLTable, at path: ArraySlice<KeyPart>, prefix: Int, file: String
    ) throws(TOMLError) {
        let part = path.first!
        let rest = path.dropFirst()
        if rest.isEmpty {
            if let existing = table.entry(part.name) {
                throw TOMLError(
                    file: file, line: part.line, column: part.column,
                    message: "duplicate key '\(part.name)' (first set on line \(existing.line))")
            }
            table.append(.init(key: part.name, value: value, line: part.line, column: part.column))
            return
        }
        if table.entry(part.name) == nil {
            // Only dotted keys create tables here: the header's own path exists already.
            let child = TOMLTable(line: part.line, column: part.column, origin: .dotted)
            table.append(
                .init(
                    key: part.name, value: TOMLValue(.table(child), line: part.line, column: part.column),
                    line: part.line, column: part.column))
        }
        try table.modify(part.name) { (entry: inout TOMLTable.Entry) throws(TOMLError) in
            guard case .table(var child) = entry.value.kind else {
                throw TOMLError(
                    file: file, line: part.line, column: part.column,
                    message: "'\(part.name)' is already a \(entry.value.typeName) (line \(entry.line)), not a table")
            }
            if prefix <= 0 && child.origin != .dotted {
                throw TOMLError(
                    file: file, line: part.line, column: part.column,
                    message: "table '\(part.name)' was already defined on line \(child.line); add the key there")
            }
            try insert(value, in: &child, at: rest, prefix: prefix - 1, file: file)
            entry.value.kind = .table(child)
        }
    }

    // MARK: Keys

    /// `key = value`, in a document or an inline table.
    private mutating func parseKeyValue() throws(TOMLError) -> (key: [KeyPart], value: TOMLValue) {
        let key = try parseKey()
        skipWhitespace()
        guard peek() == UInt8(ascii: "=") else { throw expected("'=' after the key '\(dotted(key))'") }
        advance()
        skipWhitespace()
        return (key, try parseValue())
    }

    private mutating func parseKey() throws(TOMLError) -> [KeyPart] {
        var parts = [try parseSimpleKey()]
        while true {
            let saved = (position, line, column)
            skipWhitespace()
            guard peek() == UInt8(ascii: ".") else {
                (position, line, column) = saved
                return parts
            }
            advance()
            skipWhitespace()
            parts.append(try parseSimpleKey())
        }
    }

    private mutating func parseSimpleKey() throws(TOMLError) -> KeyPart {
        let startLine = line, startColumn = column
        switch peek() {
        case UInt8(ascii: "\""):
            if lookingAt("\"\"\"") { throw expected("a key (multi-line strings cannot be keys)") }
            return KeyPart(name: try parseBasicString(), line: startLine, column: startColumn)
        case UInt8(ascii: "'"):
            if lookingAt("'''") { throw expected("a key (multi-line strings cannot be keys)") }
            return KeyPart(name: try parseLiteralString(), line: startLine, column: startColumn)
        case let byte? where Self.isBareKeyByte(byte):
            let start = position
            while let byte = peek(), Self.isBareKeyByte(byte) { advance() }
            return KeyPart(name: String(decoding: bytes[start..<position], as: UTF8.self), line: startLine, column: startColumn)
        case nil:
            throw expected("a key")
        case let byte?:
            throw expected("a key (letters, digits, '-', '_' or a quoted string), found \(describe(byte))")
        }
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    private func dotted(_ key: [KeyPart]) -> String { key.map(\.name).joined(separator: ".") }

    // MARK: Values

    private mutating func parseValue() throws(TOMLError) -> TOMLValue {
        let startLine = line, startColumn = column
        func made(_ kind: TOMLValue.Kind) -> TOMLValue { TOMLValue(kind, line: startLine, column: startColumn) }
        switch peek() {
        case UInt8(ascii: "\"")?:
            if lookingAt("\"\"\"") { return made(.string(try parseMultilineString(quote: UInt8(ascii: "\""), escapes: true))) }
            return made(.string(try parseBasicString()))
        case UInt8(ascii: "'")?:
            if lookingAt("'''") { return made(.string(try parseMultilineString(quote: UInt8(ascii: "'"), escapes: false))) }
            return made(.string(try parseLiteralString()))
        case UInt8(ascii: "[")?, UInt8(ascii: "{")?:
            guard nesting < TOMLParser.maximumNesting else {
                throw TOMLError(
                    file: file, line: line, column: column,
                    message: "arrays and inline tables nest deeper than \(TOMLParser.maximumNesting) levels; a certreload configuration needs two")
            }
            nesting += 1
            defer { nesting -= 1 }
            if peek() == UInt8(ascii: "[") { return made(.array(try parseArray())) }
            return made(.table(try parseInlineTable()))
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?:
            if lookingAt("true") && !isWordByte(at: position + 4) {
                advance(4)
                return made(.boolean(true))
            }
            if lookingAt("false") && !isWordByte(at: position + 5) {
                advance(5)
                return made(.boolean(false))
            }
            throw expected("a value (strings need quotes: \"\(word())\")")
        case let byte? where Self.startsNumber(byte):
            return made(try parseNumber())
        case nil, UInt8(ascii: "\n")?, UInt8(ascii: "\r")?, UInt8(ascii: "#")?:
            throw expected("a value after '='")
        default:
            throw expected("a value (strings need quotes: \"\(word())\")")
        }
    }

    private static func startsNumber(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "i") || byte == UInt8(ascii: "n")
    }

    private func isWordByte(at index: Int) -> Bool {
        index < bytes.count && (Self.isBareKeyByte(bytes[index]) || bytes[index] == UInt8(ascii: "."))
    }

    /// The bare word at the cursor, for "did you forget quotes" messages.
    private func word() -> String {
        var end = position
        while end < bytes.count, end - position < 40,
            !(bytes[end] == 32 || bytes[end] == 9 || bytes[end] == 10 || bytes[end] == 13 || bytes[end] == UInt8(ascii: "#")
                || bytes[end] == UInt8(ascii: ",") || bytes[end] == UInt8(ascii: "]") || bytes[end] == UInt8(ascii: "}"))
        {
            end += 1
        }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private mutating func parseNumber() throws(TOMLError) -> TOMLValue.Kind {
        let startLine = line, startColumn = column
        let start = position
        while let byte = peek(),
            Self.isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        {
            advance()
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        func bad(_ message: String) -> TOMLError {
            TOMLError(file: file, line: startLine, column: startColumn, message: message)
        }
        if text.contains(":") || (text.count >= 10 && text.dropFirst(4).first == "-" && text.first != "-") {
            throw bad("dates and times are not used in certreload's configuration (found '\(text)')")
        }
        var body = Substring(text)
        var negative = false
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        switch body {
        case "inf": return .float(negative ? -.infinity : .infinity)
        case "nan": return .float(.nan)
        default: break
        }
        if body.hasPrefix("0x") || body.hasPrefix("0o") || body.hasPrefix("0b") {
            guard text.first != "+" && text.first != "-" else { throw bad("expected an integer: a sign is not allowed before '\(body.prefix(2))'") }
            let radix = body.hasPrefix("0x") ? 16 : body.hasPrefix("0o") ? 8 : 2
            let digits = body.dropFirst(2)
            guard Self.underscoresValid(digits), let value = Int(digits.filter { $0 != "_" }, radix: radix) else {
                throw bad("expected an integer, found '\(text)'")
            }
            return .integer(value)
        }
        let isFloat = body.contains(".") || body.contains("e") || body.contains("E")
        if !isFloat {
            guard !body.isEmpty, body.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "_") }), Self.underscoresValid(body) else {
                throw bad("expected a value, found '\(text)' (strings need quotes)")
            }
            let digits = body.filter { $0 != "_" }
            guard digits.count == 1 || digits.first != "0" else { throw bad("expected an integer without leading zeros, found '\(text)'") }
            guard let value = Int((negative ? "-" : "") + digits) else { throw bad("integer '\(text)' is out of range") }
            return .integer(value)
        }
        // A float: integer part, then a fraction and/or an exponent, each with digits.
        let mantissaEnd = body.firstIndex(where: { $0 == "e" || $0 == "E" }) ?? body.endIndex
        let mantissa = body[..<mantissaEnd]
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        func digitsOK(_ part: Substring) -> Bool {
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "_") } && Self.underscoresValid(part)
        }
        var valid = parts.count <= 2 && parts.allSatisfy(digitsOK)
        if let first = parts.first, first.count > 1, first.first == "0" { valid = false }
        if mantissaEnd != body.endIndex {
            var exponent = body[body.index(after: mantissaEnd)...]
            if let sign = exponent.first, sign == "+" || sign == "-" { exponent = exponent.dropFirst() }
            if !digitsOK(exponent) { valid = false }
        }
        guard valid, let value = Double((negative ? "-" : "") + body.filter({ $0 != "_" })) else {
            throw bad("expected a number, found '\(text)'")
        }
        return .float(value)
    }

    /// Each `_` sits between two digits.
    private static func underscoresValid(_ text: Substring) -> Bool {
        guard text.first != "_", text.last != "_" else { return false }
        return !text.contains("__")
    }

    private mutating func parseArray() throws(TOMLError) -> [TOMLValue] {
        let openLine = line, openColumn = column
        advance()  // [
        var values: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            guard let byte = peek() else {
                throw TOMLError(file: file, line: openLine, column: openColumn, message: "array opened here is never closed with ']'")
            }
            if byte == UInt8(ascii: "]") {
                advance()
                return values
            }
            values.append(try parseValue())
            try skipWhitespaceCommentsAndNewlines()
            switch peek() {
            case UInt8(ascii: ",")?:
                advance()
            case UInt8(ascii: "]")?:
                advance()
                return values
            case nil:
                throw TOMLError(file: file, line: openLine, column: openColumn, message: "array opened here is never closed with ']'")
            default:
                throw expected("',' or ']' in the array")
            }
        }
    }

    private mutating func parseInlineTable() throws(TOMLError) -> TOMLTable {
        var table = TOMLTable(line: line, column: column, origin: .inline)
        advance()  // {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            advance()
            return table
        }
        while true {
            skipWhitespace()
            if peek() == UInt8(ascii: "\n") || peek() == UInt8(ascii: "\r") || peek() == UInt8(ascii: "#") {
                throw expected("a key: an inline table { … } must stay on one line (use a [table] instead)")
            }
            if peek() == UInt8(ascii: "}") { throw expected("a key after ',' (TOML does not allow a trailing comma in an inline table)") }
            let (key, value) = try parseKeyValue()
            try Self.insert(value, in: &table, at: key[...], prefix: 0, file: file)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ",")?:
                advance()
            case UInt8(ascii: "}")?:
                advance()
                return table
            case UInt8(ascii: "\n")?, UInt8(ascii: "\r")?, UInt8(ascii: "#")?:
                throw expected("',' or '}': an inline table { … } must stay on one line (use a [table] instead)")
            case nil:
                throw TOMLError(file: file, line: table.line, column: table.column, message: "inline table opened here is never closed with '}'")
            default:
                throw expected("',' or '}' in the inline table")
            }
        }
    }

    // MARK: Strings

    private mutating func parseBasicString() throws(TOMLError) -> String {
        let openLine = line, openColumn = column
        advance()  // "
        var out: [UInt8] = []
        while true {
            guard let byte = peek(), byte != 10, byte != 13 else {
                throw TOMLError(file: file, line: openLine, column: openColumn, message: "string opened here is not closed with '\"' on the same line")
            }
            if byte == UInt8(ascii: "\"") {
                advance()
                return String(decoding: out, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try parseEscape(into: &out)
                continue
            }
            try checkControl(byte)
            copy(into: &out)
        }
    }

    /// A multi-line string: `"""` (basic: escapes, and a backslash at the end of a line trims
    /// the newline and the whitespace after it) or `'''` (literal: everything as written).
    /// A newline right after the opening delimiter is dropped; up to two quotes may stand
    /// right before the closing one.
    private mutating func parseMultilineString(quote: UInt8, escapes: Bool) throws(TOMLError) -> String {
        let delimiter = String(repeating: Character(Unicode.Scalar(quote)), count: 3)
        let openLine = line, openColumn = column
        advance(3)
        if peek() == 10 { advanceNewline() } else if peek() == 13, peek(1) == 10 { advance(); advanceNewline() }
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else {
                let shown = escapes ? "'\(delimiter)'" : "\"\(delimiter)\""
                throw TOMLError(file: file, line: openLine, column: openColumn, message: "multi-line string opened here is never closed with \(shown)")
            }
            if peek() == quote, peek(1) == quote, peek(2) == quote {
                var quotes = 0
                while peek() == quote, quotes < 5 {
                    advance()
                    quotes += 1
                }
                out.append(contentsOf: repeatElement(quote, count: quotes - 3))
                return String(decoding: out, as: UTF8.self)
            }
            if escapes && byte == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the newline and the whitespace after it.
                var look = position + 1
                while look < bytes.count, bytes[look] == 32 || bytes[look] == 9 { look += 1 }
                if look < bytes.count, bytes[look] == 10 || bytes[look] == 13 {
                    advance(look - position)
                    while let next = peek(), next == 32 || next == 9 || next == 10 || next == 13 {
                        if next == 10 || next == 13 { try expectNewline() } else { advance() }
                    }
                    continue
                }
                try parseEscape(into: &out)
                continue
            }
            if byte == 10 {
                out.append(10)
                advanceNewline()
                continue
            }
            if byte == 13 {
                try expectNewline()
                out.append(10)
                continue
            }
            try checkControl(byte)
            copy(into: &out)
        }
    }

    private mutating func parseLiteralString() throws(TOMLError) -> String {
        let openLine = line, openColumn = column
        advance()  // '
        let start = position
        while true {
            guard let byte = peek(), byte != 10, byte != 13 else {
                throw TOMLError(file: file, line: openLine, column: openColumn, message: "string opened here is not closed with \"'\" on the same line")
            }
            if byte == UInt8(ascii: "'") {
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                advance()
                return text
            }
            try checkControl(byte)
            advance()
        }
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        let escapeLine = line, escapeColumn = column
        advance()  // backslash
        guard let byte = peek() else { throw expected("an escape character after '\\'") }
        advance()
        switch byte {
        case UInt8(ascii: "b"): out.append(8)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "f"): out.append(12)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = byte == UInt8(ascii: "u") ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let digit = peek(), let nibble = Self.hexValue(digit) else {
                    throw TOMLError(
                        file: file, line: escapeLine, column: escapeColumn,
                        message: "expected \(count) hex digits after '\\\(Character(Unicode.Scalar(byte)))'")
                }
                value = value << 4 | UInt32(nibble)
                advance()
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw TOMLError(file: file, line: escapeLine, column: escapeColumn, message: "'\\\(Character(Unicode.Scalar(byte)))' names no Unicode scalar value")
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw TOMLError(
                file: file, line: escapeLine, column: escapeColumn,
                message: "unknown escape '\\\(describeBare(byte))' (expected \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX; for a backslash write \\\\ or use a 'literal string')")
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private func checkControl(_ byte: UInt8) throws(TOMLError) {
        if (byte < 0x20 && byte != 9) || byte == 0x7F {
            throw error("control character \(describe(byte)) is not allowed in a string (use an escape such as \\n)")
        }
    }

    // MARK: Whitespace, comments, lines

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 32 || byte == 9 { advance() }
    }

    private mutating func skipComment() throws(TOMLError) {
        while let byte = peek(), byte != 10 {
            if byte == 13 && peek(1) == 10 { return }
            if (byte < 0x20 && byte != 9) || byte == 0x7F {
                throw error("control character \(describe(byte)) is not allowed in a comment")
            }
            advance()
        }
    }

    private mutating func skipWhitespaceCommentsAndNewlines() throws(TOMLError) {
        while let byte = peek() {
            switch byte {
            case 32, 9: advance()
            case 10: advanceNewline()
            case 13: try expectNewline()
            case UInt8(ascii: "#"): try skipComment()
            default: return
            }
        }
    }

    /// After a header or a key/value pair: only whitespace and a comment may follow on the line.
    private mutating func endOfLine() throws(TOMLError) {
        skipWhitespace()
        switch peek() {
        case nil: return
        case UInt8(ascii: "#")?: try skipComment()
        case 10?, 13?: break
        default: throw expected("the end of the line or a '#' comment after the value (one key = value per line)")
        }
        if peek() != nil { try expectNewline() }
    }

    private mutating func expectNewline() throws(TOMLError) {
        if peek() == 13 {
            guard peek(1) == 10 else { throw error("a carriage return must be followed by a newline") }
            advance()
        }
        guard peek() == 10 else { throw expected("a newline") }
        advanceNewline()
    }

    // MARK: Cursor

    private func peek(_ offset: Int = 0) -> UInt8? {
        position + offset < bytes.count ? bytes[position + offset] : nil
    }

    private func lookingAt(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        return text.withUTF8Buffer { buffer in
            for index in 0..<count where bytes[position + index] != buffer[index] { return false }
            return true
        }
    }

    /// Moves over non-newline bytes; columns count Unicode scalars, not bytes.
    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where position < bytes.count {
            if bytes[position] & 0xC0 != 0x80 { column += 1 }
            position += 1
        }
        // A column is bumped for the lead byte; continuation bytes after it do not count.
        while position < bytes.count, bytes[position] & 0xC0 == 0x80 { position += 1 }
    }

    /// Moves over one character, appending all of its UTF-8 bytes.
    private mutating func copy(into out: inout [UInt8]) {
        let start = position
        advance()
        out.append(contentsOf: bytes[start..<position])
    }

    private mutating func advanceNewline() {
        position += 1
        line += 1
        column = 1
    }

    private func error(_ message: String, line: Int? = nil, column: Int? = nil) -> TOMLError {
        TOMLError(file: file, line: line ?? self.line, column: column ?? self.column, message: message)
    }

    private func expected(_ what: String) -> TOMLError {
        guard let byte = peek() else { return error("expected \(what), found the end of the file") }
        if what.contains(", found ") { return error("expected \(what)") }
        return error("expected \(what), found \(describe(byte))")
    }

    private func describe(_ byte: UInt8) -> String {
        switch byte {
        case 10, 13: return "the end of the line"
        case 9: return "a tab"
        case 32: return "a space"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        case 0x80...: return "'\(word().prefix(1))'"
        default: return "byte 0x\(String(byte, radix: 16))"
        }
    }

    private func describeBare(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(Character(Unicode.Scalar(byte))) : "0x\(String(byte, radix: 16))"
    }

    /// TOML documents are UTF-8: report the first line that is not.
    private func checkEncoding() throws(TOMLError) {
        var lineNumber = 1
        for lineBytes in bytes.split(separator: 10, omittingEmptySubsequences: false) {
            if String(validating: lineBytes, as: UTF8.self) == nil {
                let valid = lineBytes.prefix { $0 < 0x80 }
                throw TOMLError(file: file, line: lineNumber, column: valid.count + 1, message: "the file is not valid UTF-8")
            }
            lineNumber += 1
        }
    }
}
