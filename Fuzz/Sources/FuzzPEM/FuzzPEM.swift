@testable import CertReload

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

// SwiftPM links an executable's entry point as `FuzzPEM_main`; libFuzzer's driver runs the loop.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzPEM_main")
func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzz(data, size) }
}
