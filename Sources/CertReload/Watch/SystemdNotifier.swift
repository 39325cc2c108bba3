internal import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// systemd's notify protocol (`Type=notify`): READY=1, RELOADING=1, STOPPING=1, STATUS=,
/// WATCHDOG=1, sent with `sd_notify` to `$NOTIFY_SOCKET`. Without that variable every call
/// does nothing.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends one or more `KEY=VALUE` lines; whether systemd was told.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC=` systemd ≥ 253 asks for (`Type=notify-reload`).
    @discardableResult
    public func reloading() -> Bool {
        let microseconds = MonotonicClock.nanoseconds() / 1000
        return notify("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// Half of `$WATCHDOG_USEC` when the watchdog is on for this process, else nil.
    public static func watchdogInterval(environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], !pid.isEmpty, Int32(pid) != getpid() { return nil }
        return .microseconds(microseconds / 2)
    }

    /// `watchdogInterval(environment:)` over this process's environment.
    public static func watchdogInterval() -> Duration? {
        var environment: [String: String] = [:]
        for name in ["WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return watchdogInterval(environment: environment)
    }
}
