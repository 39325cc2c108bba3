#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import CSystemd
internal import CCertReloadShims.Systemd

/// A failed sd-bus call: the libsystemd function (or D-Bus method) that failed, its errno and,
/// when the peer answered with a D-Bus error, that error's name and text.
public struct BusError: Error, Sendable, CustomStringConvertible {
    /// `sd_bus_open_system`, `org.freedesktop.systemd1.Manager.ReloadUnit`, …
    public var call: String
    /// A positive errno value (libsystemd returns it negated).
    public var code: Int32
    /// The D-Bus error name, such as `org.freedesktop.systemd1.NoSuchUnit`.
    public var name: String?
    /// The D-Bus error text, such as "Unit nginx.service not found."
    public var message: String?

    public init(_ call: String, code: Int32, name: String? = nil, message: String? = nil) {
        self.call = call
        self.code = code
        self.name = name
        self.message = message
    }

    public var description: String {
        if let message, let name { return "\(call): \(message) (\(name))" }
        return "\(call): \(errnoDescription(code))"
    }

    /// Whether the call ran out of time (the method call, or the wait for a job).
    /// Ran out of time, or the caller gave up (ECANCELED).
    public var isTimeout: Bool { code == ETIMEDOUT || code == ECANCELED }
}

/// A connection to a D-Bus bus; owns the `sd_bus*` and closes it on deinit.
///
/// Not thread-safe (neither is sd-bus): one connection serves one caller at a time.
final class BusConnection {
    let handle: OpaquePointer

    /// The system bus (`$DBUS_SYSTEM_BUS_ADDRESS` when set), or the bus at `address`
    /// (`unix:path=/run/dbus/system_bus_socket`).
    init(address: String? = nil) throws(BusError) {
        var bus: OpaquePointer?
        guard let address else {
            let r = sd_bus_open_system(&bus)
            guard r >= 0, let bus else { throw BusError("sd_bus_open_system", code: -r) }
            handle = bus
            return
        }
        var r = sd_bus_new(&bus)
        guard r >= 0, let bus else { throw BusError("sd_bus_new", code: -r) }
        handle = bus
        // From here deinit closes `bus` when a step throws.
        r = sd_bus_set_address(bus, address)
        guard r >= 0 else { throw BusError("sd_bus_set_address \(address)", code: -r) }
        r = sd_bus_set_bus_client(bus, 1)
        guard r >= 0 else { throw BusError("sd_bus_set_bus_client", code: -r) }
        r = sd_bus_start(bus)
        guard r >= 0 else { throw BusError("sd_bus_start \(address)", code: -r) }
    }

    deinit {
        sd_bus_flush_close_unref(handle)
    }

    /// Bounds every following method call (sd-bus's default is 25 s).
    func setMethodCallTimeout(seconds: Double) {
        _ = sd_bus_set_method_call_timeout(handle, Deadline.microseconds(seconds))
    }

    /// Calls `interface.member` with the arguments given (none, one or two strings).
    func call(
        destination: String, path: String, interface: String, member: String, arguments: [String] = []
    ) throws(BusError) -> BusMessage {
        var error = sd_bus_error(name: nil, message: nil, _need_free: 0)
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        let r: Int32
        switch arguments.count {
        case 0:
            r = certreload_bus_call_void(handle, destination, path, interface, member, &error, &reply)
        case 1:
            r = certreload_bus_call_s(handle, destination, path, interface, member, &error, &reply, arguments[0])
        case 2:
            r = certreload_bus_call_ss(
                handle, destination, path, interface, member, &error, &reply, arguments[0], arguments[1])
        default:
            throw BusError("\(interface).\(member)", code: EINVAL)
        }
        guard r >= 0, let reply else {
            throw BusError(
                "\(interface).\(member)", code: r < 0 ? -r : EIO,
                name: error.name.map { String(cString: $0) }, message: error.message.map { String(cString: $0) })
        }
        return BusMessage(taking: reply)
    }

    /// A trivial (integer) property such as `MainPID` (D-Bus type `u`).
    func uint32Property(destination: String, path: String, interface: String, member: String) throws(BusError) -> UInt32 {
        var error = sd_bus_error(name: nil, message: nil, _need_free: 0)
        defer { sd_bus_error_free(&error) }
        var value: UInt32 = 0
        let r = sd_bus_get_property_trivial(
            handle, destination, path, interface, member, &error, CChar(UInt8(ascii: "u")), &value)
        guard r >= 0 else {
            throw BusError(
                "get property \(interface).\(member) of \(path)", code: -r,
                name: error.name.map { String(cString: $0) }, message: error.message.map { String(cString: $0) })
        }
        return value
    }

    /// Dispatches one queued or incoming message. True when one was processed.
    func process() throws(BusError) -> Bool {
        let r = sd_bus_process(handle, nil)
        guard r >= 0 else { throw BusError("sd_bus_process", code: -r) }
        return r > 0
    }

    /// Waits until a message may be ready, at most `seconds`.
    func wait(seconds: Double) throws(BusError) {
        let r = sd_bus_wait(handle, Deadline.microseconds(seconds))
        guard r >= 0 || r == -EINTR else { throw BusError("sd_bus_wait", code: -r) }
    }
}

/// One D-Bus message; owns the `sd_bus_message*` reference and drops it on deinit.
final class BusMessage {
    let handle: OpaquePointer

    init(taking handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        sd_bus_message_unref(handle)
    }

    /// Reads an object path (type `o`), such as the job a Manager method returned.
    func readObjectPath(call: String) throws(BusError) -> String {
        var path: UnsafePointer<CChar>?
        let r = certreload_bus_message_read_object_path(handle, &path)
        guard r > 0, let path else { throw BusError("sd_bus_message_read (\(call) reply)", code: r < 0 ? -r : EBADMSG) }
        return String(cString: path)
    }
}

extension Deadline {
    /// Seconds as microseconds for sd-bus, at least 1 (0 would mean "no timeout" or "default").
    static func microseconds(_ seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 1 }
        return UInt64(min(seconds, 1e9) * 1e6) + 1
    }
}
