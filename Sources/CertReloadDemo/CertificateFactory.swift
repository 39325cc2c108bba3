public import CertReload
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import COpenSSL

/// Makes real keys and certificates with OpenSSL, for the demo and the tests.
///
/// It does not make certificates fit for production use: no CRL or OCSP data, and the CA
/// keys live only in memory.
public enum CertificateFactory {
    public enum KeyType: Sendable, CustomStringConvertible {
        case rsa(bits: Int32)
        case ecdsaP256
        case ed25519

        public var description: String {
            switch self {
            case .rsa(let bits): return "RSA \(bits)"
            case .ecdsaP256: return "ECDSA P-256"
            case .ed25519: return "Ed25519"
            }
        }
    }

    public struct FactoryError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A new private key.
    public static func makeKey(_ type: KeyType) throws(FactoryError) -> PrivateKey {
        let id: Int32
        switch type {
        case .rsa: id = EVP_PKEY_RSA
        case .ecdsaP256: id = EVP_PKEY_EC
        case .ed25519: id = EVP_PKEY_ED25519
        }
        guard let context = EVP_PKEY_CTX_new_id(id, nil) else {
            throw FactoryError(description: "EVP_PKEY_CTX_new_id: \(drainOpenSSLErrors())")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else {
            throw FactoryError(description: "keygen init: \(drainOpenSSLErrors())")
        }
        switch type {
        case .rsa(let bits): _ = EVP_PKEY_CTX_set_rsa_keygen_bits(context, bits)
        case .ecdsaP256: _ = EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1)
        case .ed25519: break
        }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen(context, &key) == 1, let key else {
            throw FactoryError(description: "keygen: \(drainOpenSSLErrors())")
        }
        return PrivateKey(taking: key)
    }

    /// A certificate for `key`'s public key, signed by `issuer` (or self-signed).
    public static func makeCertificate(
        commonName: String, subjectAltNames: [String] = [], key: PrivateKey,
        issuer: (certificate: Certificate, key: PrivateKey)? = nil, isCA: Bool = false,
        notBefore: Int64, notAfter: Int64, serial: Int = Int.random(in: 1...Int(Int32.max))
    ) throws(FactoryError) -> Certificate {
        guard let x509 = X509_new() else { throw FactoryError(description: "X509_new failed") }
        let certificate = Certificate(taking: x509)
        X509_set_version(x509, 2)
        ASN1_INTEGER_set(X509_get_serialNumber(x509), serial)
        ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore))
        ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter))
        let name = X509_get_subject_name(x509)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0)
        X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.certificate.pointer) } ?? name)
        X509_set_pubkey(x509, key.pointer)

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.certificate.pointer ?? x509, x509, nil, nil, 0)
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, isCA ? "critical,CA:TRUE" : "critical,CA:FALSE"),
            (NID_key_usage, isCA ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment"),
            (NID_subject_key_identifier, "hash"),
        ]
        if issuer != nil { extensions.append((NID_authority_key_identifier, "keyid:always")) }
        if !isCA { extensions.append((NID_ext_key_usage, "serverAuth")) }
        if !subjectAltNames.isEmpty {
            let value = subjectAltNames.map { name in
                name.allSatisfy({ $0.isNumber || $0 == "." }) || name.contains(":") ? "IP:\(name)" : "DNS:\(name)"
            }.joined(separator: ",")
            extensions.append((NID_subject_alt_name, value))
        }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw FactoryError(description: "extension \(value): \(drainOpenSSLErrors())")
            }
            X509_add_ext(x509, ext, -1)
            X509_EXTENSION_free(ext)
        }
        let signer = issuer?.key ?? key
        let digest = EVP_PKEY_get_base_id(signer.pointer) == EVP_PKEY_ED25519 ? nil : EVP_sha256()
        guard X509_sign(x509, signer.pointer, digest) > 0 else {
            throw FactoryError(description: "X509_sign: \(drainOpenSSLErrors())")
        }
        return certificate
    }
}

extension PrivateKey {
    /// PKCS#8 PEM; encrypted with AES-128-CBC when a passphrase is given.
    public func pem(passphrase: String? = nil) -> String {
        withMemoryBIOText { bio in
            if let passphrase {
                var bytes = Array(passphrase.utf8)
                _ = PEM_write_bio_PKCS8PrivateKey(bio, pointer, EVP_aes_128_cbc(), &bytes, Int32(bytes.count), nil, nil)
            } else {
                _ = PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil)
            }
        }
    }
}

/// A small CA (root and intermediate) that issues leaf certificates, like an ACME server.
public final class TestCA: @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init.
    public let root: Certificate
    public let rootKey: PrivateKey
    public let intermediate: Certificate
    public let intermediateKey: PrivateKey

    public init(name: String = "certreload test", now: Int64? = nil) throws(CertificateFactory.FactoryError) {
        let now = now ?? Int64(time(nil))
        rootKey = try CertificateFactory.makeKey(.ecdsaP256)
        root = try CertificateFactory.makeCertificate(
            commonName: "\(name) root", key: rootKey, isCA: true,
            notBefore: now - 86_400, notAfter: now + 3650 * 86_400)
        intermediateKey = try CertificateFactory.makeKey(.ecdsaP256)
        intermediate = try CertificateFactory.makeCertificate(
            commonName: "\(name) intermediate", key: intermediateKey, issuer: (root, rootKey), isCA: true,
            notBefore: now - 86_400, notAfter: now + 1825 * 86_400)
    }

    /// A leaf for `names` (the first is the subject CN), valid over the given window.
    public func issue(
        names: [String], key: PrivateKey, notBefore: Int64, notAfter: Int64
    ) throws(CertificateFactory.FactoryError) -> Certificate {
        try CertificateFactory.makeCertificate(
            commonName: names.first ?? "leaf", subjectAltNames: names, key: key,
            issuer: (intermediate, intermediateKey), notBefore: notBefore, notAfter: notAfter)
    }
}
