
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

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count - from, let first = needle.first else { return nil }
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

/// Parsed certificates by PEM block, so the intermediates every lineage shares, and the leaf
/// that cert.pem and fullchain.pem both hold, are parsed once (OpenSSL 3 parsing costs about
/// 0.1 ms per certificate). Failures are not cached.
final class CertificateCache: Sendable {
    static let shared = CertificateCache()

    private let entries = Locked<[[UInt8]: Certificate]>([:])

    func certificate(for block: [UInt8]) -> Certificate? {
        if let hit = entries.withLock({ $0[block] }) { return hit }
        guard let parsed = Certificate.parse(pemBlock: block) else { return nil }
        return entries.withLock { table in
            if let raced = table[block] { return raced }
            if table.count > 4096 { table.removeAll() }
            table[block] = parsed
            return parsed
        }
    }
}
