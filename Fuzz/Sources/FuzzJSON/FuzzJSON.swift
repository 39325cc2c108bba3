@testable import CertReload

/// What the HTTP reload kinds do with an answer: JSON parsing, Stalwart's error entries,
/// and the one-line excerpt (with secrets scrubbed) that goes into messages.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let redactor = Redactor(secrets: ["API_secret", "c2VjcmV0"])
    let json = try? JSONParser.parse(bytes)
    _ = StalwartReloadTarget.configErrors(json, redactor)
    let excerpt = redactor.excerpt(String(decoding: bytes, as: UTF8.self))
    if excerpt.contains("API_secret") { fatalError("a secret survived the excerpt") }
    return 0
}

// SwiftPM links an executable's entry point as `FuzzJSON_main`; libFuzzer's driver runs the loop.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzJSON_main")
func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzz(data, size) }
}
