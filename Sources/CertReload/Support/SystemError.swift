#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The text of an errno value, as `strerror` words it.
func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// A failed system call, naming the call and the path it was about.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var path: String?
    public var code: Int32

    public init(_ call: String, path: String? = nil, code: Int32 = errno) {
        self.call = call
        self.path = path
        self.code = code
    }

    public var description: String {
        if let path { return "\(call) \(path): \(errnoDescription(code))" }
        return "\(call): \(errnoDescription(code))"
    }
}

/// A mistake in how certreload was invoked (exit status 2).
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var fix: String?

    public init(_ message: String, fix: String? = nil) {
        self.message = message
        self.fix = fix
    }

    public var description: String { message }
}
