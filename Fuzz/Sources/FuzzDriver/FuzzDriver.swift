/// The glue every fuzz target shares: SwiftPM links an executable's entry point as
/// `<Target>_main`, and that entry hands the loop to libFuzzer's driver.
///
///     @_cdecl("FuzzPEM_main")
///     func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }
public typealias Arguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// Runs libFuzzer's loop over `input` with the process's arguments (corpus directories, -flags).
public func runLibFuzzer(
    _ argc: Int32, _ argv: Arguments, _ input: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32 {
    var count = argc
    var vector: Arguments? = argv
    return LLVMFuzzerRunDriver(&count, &vector, input)
}
