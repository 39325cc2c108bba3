@testable import CertReload
import FuzzDriver

/// The TOML parser and the configuration decoder on top of it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let result = ConfigurationLoader.validate(bytes, path: "fuzz.toml")
    for error in result.errors.prefix(4) { _ = error.description }
    return 0
}

@_cdecl("FuzzTOML_main")
func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }
