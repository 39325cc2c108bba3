
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One `-----BEGIN X-----` … `-----END X-----` block of a PEM file.
struct PEMBlock {
    var label: String
    /// The block's bytes from BEGIN to the end of the END line.
    var bytes: [UInt8]

    /// Splits a PEM file into its blocks; text between blocks is ignored, as OpenSSL does.
    static func split(_ data: [UInt8]) -> [PEMBlock] {
        let begin = Array("-----BEGIN ".utf8)
        let end = Array("-----END ".utf8)
        let dashes = Array("-----".utf8)
        var blocks: [PEMBlock] = []
        var index = 0
        while let start = find(begin, in: data, from: index) {
            let labelStart = start + begin.count
            guard let labelEnd = find(dashes, in: data, from: labelStart),
                  let endStart = find(end, in: data, from: labelEnd + dashes.count),
                  let endLabelEnd = find(dashes, in: data, from: endStart + end.count)
            else { break }
            let label = String(decoding: data[labelStart..<labelEnd], as: UTF8.self)
            var stop = endLabelEnd + dashes.count
            if stop < data.count && data[stop] == 13 { stop += 1 }
            if stop < data.count && data[stop] == 10 { stop += 1 }
            blocks.append(PEMBlock(label: label, bytes: Array(data[start..<stop])))
            index = stop
        }
        return blocks
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard from >= 0, needle.count <= haystack.count - from, let first = needle.first else { return nil }
        var index = from
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var match = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    match = false
                    break
                }
                if match { return index }
            }
            index += 1
        }
        return nil
    }
}

/// The certificates of one lineage's files so far, by PEM block: fullchain.pem repeats
/// cert.pem and chain.pem, and each distinct block is parsed once.
struct ParsedBlocks {
    private var entries: [(block: [UInt8], certificate: Certificate)] = []

    func certificate(for block: [UInt8]) -> Certificate? {
        entries.first { CertificateCache.same($0.block, block) }?.certificate
    }

    mutating func add(_ block: [UInt8], _ certificate: Certificate) {
        if self.certificate(for: block) == nil { entries.append((block, certificate)) }
    }
}

/// Parsed intermediates by PEM block, so the few that every lineage shares are parsed once
/// per process (OpenSSL 3 parsing costs about 0.1 ms per certificate). Failures are not cached.
final class CertificateCache: Sendable {
    static let shared = CertificateCache()

    private let entries = Locked<[BlockKey: Certificate]>([:])

    /// A PEM block as a dictionary key, hashed as one run of bytes (an `[UInt8]` key is hashed
    /// byte by byte: ~0.15 M instructions per lineage).
    private struct BlockKey: Hashable {
        let bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }

        static func == (left: BlockKey, right: BlockKey) -> Bool { same(left.bytes, right.bytes) }
    }

    /// Byte equality by memcmp.
    static func same(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        if left.isEmpty { return true }
        return left.withUnsafeBytes { a in right.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
    }

    func certificate(for block: [UInt8]) -> Certificate? {
        let key = BlockKey(bytes: block)
        if let hit = entries.withLock({ $0[key] }) { return hit }
        guard let parsed = Certificate.parse(pemBlock: block) else { return nil }
        return entries.withLock { table in
            if let raced = table[key] { return raced }
            if table.count > 4096 { table.removeAll() }
            table[key] = parsed
            return parsed
        }
    }
}
