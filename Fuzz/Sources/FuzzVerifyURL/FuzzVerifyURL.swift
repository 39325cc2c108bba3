@testable import CertReload
import FuzzDriver

/// The verify-URL grammar and the reload endpoints' URL parsing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let endpoint = try? VerifyEndpoint(parsing: text) {
        _ = endpoint.url
        _ = endpoint.host
    }
    _ = try? HTTPEndpoint(text)
    return 0
}

@_cdecl("FuzzVerifyURL_main")
func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }
