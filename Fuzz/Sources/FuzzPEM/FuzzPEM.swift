@testable import CertReload
import FuzzDriver

/// Certificate and key loading: what certreload reads from certbot's files.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let (certificates, _) = Certificate.parseAll(pem: bytes)
    for certificate in certificates.prefix(4) {
        _ = certificate.sha256
        _ = certificate.subjectAltNames
        _ = certificate.subject
        _ = certificate.covers(host: "mail.example.com")
    }
    if case .success(let key) = PrivateKey.parse(pem: bytes) {
        _ = key.algorithm
        if let first = certificates.first { _ = first.matches(key) }
    }
    return 0
}

@_cdecl("FuzzPEM_main")
func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }
