#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import COpenSSL
internal import CCertReloadShims.X509

/// OpenSSL's error queue, drained into one line (oldest first).
package func drainOpenSSLErrors() -> String {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        reasons.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }
    return reasons.isEmpty ? "no detail from OpenSSL" : reasons.joined(separator: "; ")
}

/// A memory BIO over bytes, freed with the object.
final class MemoryBIO {
    package let pointer: OpaquePointer
    private let storage: UnsafeMutableRawBufferPointer

    init(_ bytes: [UInt8]) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.storage = storage
        pointer = BIO_new_mem_buf(storage.baseAddress, Int32(bytes.count))
    }

    deinit {
        BIO_free(pointer)
        storage.deallocate()
    }
}

/// Reads everything written to a fresh memory BIO by `body`.
package func withMemoryBIOText(_ body: (OpaquePointer) -> Void) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    body(bio)
    var data: UnsafeMutablePointer<CChar>?
    let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
    guard length > 0, let data else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
}

/// An X.509 certificate.
///
/// `@unchecked Sendable`: the X509 is never mutated after parsing, OpenSSL's read-only
/// accessors on a parsed certificate are thread-safe, and the key decoded on demand is
/// guarded by a lock.
public final class Certificate: @unchecked Sendable {
    package let pointer: OpaquePointer
    /// Set for a certificate parsed without its public key (`parse(pemBlock:)`): its DER,
    /// taken once, and the key, decoded when first needed.
    private let bare: BareParts?

    private final class BareParts: Sendable {
        let der: [UInt8]
        /// nil: not decoded yet; .some(nil): it does not decode.
        let key = Locked<OpaquePointer??>(nil)

        init(der: [UInt8]) { self.der = der }

        deinit {
            key.withLock { slot in
                if case .some(.some(let decoded)) = slot { EVP_PKEY_free(decoded) }
            }
        }
    }

    package init(taking pointer: OpaquePointer) {
        self.pointer = pointer
        bare = nil
    }

    private init(takingBare pointer: OpaquePointer) {
        self.pointer = pointer
        bare = BareParts(der: Certificate.encoded(pointer))
    }

    deinit { X509_free(pointer) }

    /// Every certificate in a PEM buffer, and an error when any PEM block is not a parsable
    /// certificate. The first block is taken for a leaf; the others, intermediates every
    /// lineage shares, are parsed once per process (see `CertificateCache`).
    public static func parseAll(pem bytes: [UInt8]) -> (certificates: [Certificate], error: String?) {
        var parsed = ParsedBlocks()
        return parseAll(pem: bytes, leafFirst: true, parsed: &parsed)
    }

    /// `parseAll(pem:)` for one file of a lineage. Blocks met before in `parsed` (cert.pem's
    /// leaf is fullchain.pem's first block) are not parsed again. With `leafFirst`, the first
    /// block is not kept in the process-wide cache: leaves are one per lineage, and a daemon
    /// following thousands of lineages would keep them all.
    static func parseAll(
        pem bytes: [UInt8], leafFirst: Bool, parsed: inout ParsedBlocks
    ) -> (certificates: [Certificate], error: String?) {
        let blocks = PEMBlock.split(bytes)
        if blocks.isEmpty { return ([], "no PEM certificate in it") }
        var certificates: [Certificate] = []
        var failures: [String] = []
        for (index, block) in blocks.enumerated() {
            guard block.label == "CERTIFICATE" else {
                failures.append("block \(index + 1) is \"\(block.label)\", not CERTIFICATE")
                continue
            }
            let certificate: Certificate?
            if let known = parsed.certificate(for: block.bytes) {
                certificate = known
            } else if leafFirst && index == 0 {
                certificate = Certificate.parse(pemBlock: block.bytes)
            } else {
                certificate = CertificateCache.shared.certificate(for: block.bytes)
            }
            if let certificate {
                parsed.add(block.bytes, certificate)
                certificates.append(certificate)
            } else {
                failures.append("block \(index + 1) does not parse (\(drainOpenSSLErrors()))")
            }
        }
        if failures.isEmpty { return (certificates, nil) }
        return (certificates, failures.joined(separator: "; "))
    }

    /// Parses one PEM certificate block, as PEM_read_bio_X509 does but without decoding the
    /// public key until it is needed: OpenSSL 3.0 builds a key decoder for every certificate
    /// it parses (~1 M instructions), and only the issuer's key (for the signature) and the
    /// leaf's (for the key match) are ever used.
    static func parse(pemBlock bytes: [UInt8]) -> Certificate? {
        guard let x509 = bytes.withUnsafeBufferPointer({ certreload_read_certificate_bare($0.baseAddress, $0.count) })
        else { return nil }
        return Certificate(takingBare: x509)
    }

    /// Parses one certificate from DER.
    public static func fromDER(_ der: [UInt8]) -> Certificate? {
        der.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let x509 = d2i_X509(nil, &pointer, buffer.count) else {
                _ = drainOpenSSLErrors()
                return nil
            }
            return Certificate(taking: x509)
        }
    }

    public var der: [UInt8] { bare?.der ?? Certificate.encoded(pointer) }

    private static func encoded(_ pointer: OpaquePointer) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(pointer, &out)
        guard length > 0, let out else { return [] }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// The public key (owned by the certificate), nil when it does not decode.
    private var publicKey: OpaquePointer? {
        guard let bare else { return X509_get0_pubkey(pointer) }
        return bare.key.withLock { slot in
            if let known = slot { return known }
            let decoded = certreload_x509_public_key(pointer)
            slot = .some(decoded)
            return decoded
        }
    }

    public var pem: String {
        withMemoryBIOText { bio in _ = PEM_write_bio_X509(bio, pointer) }
    }

    /// SHA-256 of the DER, lower-case hex.
    public var sha256: String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // X509_digest is SHA-256 of i2d_X509, which a bare certificate keeps (its own context
        // has no digests).
        if bare == nil, X509_digest(pointer, EVP_sha256(), &digest, &length) == 1, length == 32 {
            return hex(digest.prefix(Int(length)))
        }
        // X509_digest failed (allocation, or a certificate that does not re-encode). Digest
        // the DER directly; if that fails too, a value no other certificate can match, so a
        // comparison of two failures never reads as "the same certificate".
        if bare == nil { _ = drainOpenSSLErrors() }
        let bytes = der
        length = 0
        if !bytes.isEmpty, EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha256(), nil) == 1, length == 32 {
            return hex(digest.prefix(Int(length)))
        }
        _ = drainOpenSSLErrors()
        return "sha256-unavailable-\(UInt64.random(in: 0...UInt64.max))"
    }

    public var subject: String { Certificate.nameText(X509_get_subject_name(pointer)) }
    public var issuer: String { Certificate.nameText(X509_get_issuer_name(pointer)) }

    private static func nameText(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        return withMemoryBIOText { bio in
            _ = X509_NAME_print_ex(bio, name, 0, certreload_xn_flag_rfc2253())
        }
    }

    /// DNS and IP subjectAltNames, in the certificate's order.
    public var subjectAltNames: [String] {
        guard let names = certreload_x509_get_sans(pointer) else { return [] }
        defer { certreload_general_names_free(names) }
        var result: [String] = []
        for index in 0..<certreload_general_names_count(names) {
            var type: Int32 = 0
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            guard certreload_general_name_at(names, index, &type, &data, &length) == 0, let data else {
                continue
            }
            let bytes = UnsafeBufferPointer(start: data, count: Int(length))
            if type == GEN_DNS {
                result.append(String(decoding: bytes, as: UTF8.self))
            } else if type == GEN_IPADD {
                result.append(ipText(Array(bytes)))
            }
        }
        return result
    }

    public var notBefore: Int64? { Certificate.epoch(X509_get0_notBefore(pointer)) }
    public var notAfter: Int64? { Certificate.epoch(X509_get0_notAfter(pointer)) }

    private static func epoch(_ time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }

    /// Whether the basicConstraints mark this as a CA certificate.
    public var isCA: Bool { (bare == nil ? X509_check_ca(pointer) : certreload_x509_check_ca_bare(pointer)) >= 1 }

    /// Issued by itself (subject = issuer and its own key verifies the signature).
    public var isSelfSigned: Bool {
        // Not X509_check_issued: it also demands keyCertSign, which the self-signed leaf
        // certificates servers generate as a fallback do not have.
        issuerNameMatches(self) && signed(by: self)
    }

    /// Whether `issuer`'s key verifies this certificate's signature and the names chain.
    public func signed(by issuer: Certificate) -> Bool {
        guard let key = issuer.publicKey else {
            _ = drainOpenSSLErrors()
            return false
        }
        let ok: Bool
        if let bare {
            ok = bare.der.withUnsafeBufferPointer { certreload_x509_verify_der(pointer, $0.baseAddress, $0.count, key) } == 1
        } else {
            ok = X509_verify(pointer, key) == 1
        }
        _ = drainOpenSSLErrors()
        return ok
    }

    public func issuerNameMatches(_ issuer: Certificate) -> Bool {
        X509_NAME_cmp(X509_get_issuer_name(pointer), X509_get_subject_name(issuer.pointer)) == 0
    }

    /// RFC 6125 host matching by OpenSSL: subjectAltName only, wildcards for one whole label.
    public func covers(host: String) -> Bool {
        if host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) {
            return X509_check_ip_asc(pointer, host, 0) == 1
        }
        let flags = UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)
        return X509_check_host(pointer, host, host.utf8.count, flags, nil) == 1
    }

    /// Whether this certificate's public key is the one of `key`.
    public func matches(_ key: PrivateKey) -> Bool {
        guard let publicKey else {
            _ = drainOpenSSLErrors()
            return false
        }
        let ok = EVP_PKEY_eq(publicKey, key.pointer) == 1
        _ = drainOpenSSLErrors()
        return ok
    }
}

/// A private key. Its bytes are never printed or logged.
///
/// `@unchecked Sendable`: the EVP_PKEY is not mutated after parsing.
public final class PrivateKey: @unchecked Sendable {
    package let pointer: OpaquePointer

    package init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { EVP_PKEY_free(pointer) }

    public enum ParseError: Error, Equatable {
        case encrypted
        case notAKey
        case unsupported(String)
    }

    /// Parses a PEM private key without ever prompting for a passphrase.
    public static func parse(pem bytes: [UInt8]) -> Result<PrivateKey, ParseError> {
        // Searched as bytes: String.contains costs ~0.4 M instructions on a 3 KiB key.
        if bytes.contains(subsequence: encryptedPKCS8) || bytes.contains(subsequence: encryptedPEMHeader) {
            return .failure(.encrypted)
        }
        guard bytes.contains(subsequence: privateKeyTrailer) else { return .failure(.notAKey) }
        // PEM_read_bio_PrivateKey's work with a decoder context reused per thread (see the shim).
        guard let key = bytes.withUnsafeBufferPointer({ certreload_read_private_key($0.baseAddress, $0.count) }) else {
            return .failure(.unsupported(drainOpenSSLErrors()))
        }
        return .success(PrivateKey(taking: key))
    }

    /// "RSA", "ECDSA P-256", "Ed25519", …
    public var algorithm: String {
        switch EVP_PKEY_get_base_id(pointer) {
        case EVP_PKEY_RSA: return "RSA"
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            if EVP_PKEY_get_group_name(pointer, &name, name.count, &length) == 1 {
                let group = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                return "ECDSA " + (group == "prime256v1" ? "P-256" : group == "secp384r1" ? "P-384" : group)
            }
            return "ECDSA"
        case EVP_PKEY_ED25519: return "Ed25519"
        case EVP_PKEY_ED448: return "Ed448"
        default: return String(cString: OBJ_nid2sn(EVP_PKEY_get_base_id(pointer)))
        }
    }

    public var isRSA: Bool { EVP_PKEY_get_base_id(pointer) == EVP_PKEY_RSA }
    public var bits: Int { Int(EVP_PKEY_get_bits(pointer)) }
}

private let encryptedPKCS8 = Array("-----BEGIN ENCRYPTED PRIVATE KEY-----".utf8)
private let encryptedPEMHeader = Array("Proc-Type: 4,ENCRYPTED".utf8)
private let privateKeyTrailer = Array("PRIVATE KEY-----".utf8)

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in these bytes.
    func contains(subsequence needle: [UInt8]) -> Bool {
        PEMBlock.find(needle, in: self, from: 0) != nil
    }
}

func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func ipText(_ bytes: [UInt8]) -> String {
    if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
    if bytes.count == 16 {
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
    return hex(bytes)
}

/// "2026-11-29T23:03:52Z"
public func isoTime(_ seconds: Int64) -> String {
    var value = time_t(seconds)
    var parts = tm()
    gmtime_r(&value, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}
