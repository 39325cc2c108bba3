#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import CSystemd
internal import CCertReloadShims.Systemd

/// What systemd reported when a job ended: `done`, or why it did not.
public struct SystemdJob: Sendable, Equatable {
    /// `/org/freedesktop/systemd1/job/42`
    public var path: String
    public var unit: String
    /// `done`, `canceled`, `timeout`, `failed`, `dependency` or `skipped`.
    public var result: String

    public var succeeded: Bool { result == "done" }
}

extension ReloadConfiguration.SystemdMode {
    /// The org.freedesktop.systemd1.Manager method `systemctl` calls for this mode.
    public var managerMethod: String {
        switch self {
        case .reload: "ReloadUnit"
        case .restart: "RestartUnit"
        case .reloadOrRestart: "ReloadOrRestartUnit"
        }
    }
}

/// systemd's service manager over D-Bus (org.freedesktop.systemd1), as `systemctl` talks to it.
///
/// Not thread-safe: make one per reload. Does not call `Subscribe()` beyond what waiting
/// for its own jobs needs.
public final class SystemdManager {
    static let destination = "org.freedesktop.systemd1"
    static let path = "/org/freedesktop/systemd1"
    static let managerInterface = "org.freedesktop.systemd1.Manager"
    static let serviceInterface = "org.freedesktop.systemd1.Service"

    private let bus: BusConnection

    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` when set) or to `busAddress`.
    public init(busAddress: String? = nil) throws(BusError) {
        bus = try BusConnection(address: busAddress)
    }

    /// Starts a reload/restart job for `unit` (mode "replace") and waits for systemd's
    /// `JobRemoved` signal for it, at most `timeout` seconds in all.
    ///
    /// Throws a `BusError` with `ETIMEDOUT` when the job has not ended in time; a job that
    /// ended badly is returned, not thrown (see `SystemdJob.succeeded`).
    public func runJob(
        _ mode: ReloadConfiguration.SystemdMode, unit: String, timeout: Double, cancellation: CancellationFlag? = nil
    ) throws(BusError) -> SystemdJob {
        let deadline = Deadline(seconds: timeout)
        // Subscribe before the call: the job may end before its reply is read.
        let watch = try JobRemovedWatch(bus: bus)
        bus.setMethodCallTimeout(seconds: deadline.remaining)
        // Real systemd sends job signals to the client that queued the job anyway;
        // Subscribe() makes that explicit and is harmless when it fails.
        _ = try? bus.call(
            destination: Self.destination, path: Self.path, interface: Self.managerInterface, member: "Subscribe")
        bus.setMethodCallTimeout(seconds: deadline.remaining)
        let method = mode.managerMethod
        let reply = try bus.call(
            destination: Self.destination, path: Self.path, interface: Self.managerInterface, member: method,
            arguments: [unit, "replace"])
        let job = try reply.readObjectPath(call: method)
        while true {
            if let result = watch.results[job] {
                return SystemdJob(path: job, unit: unit, result: result)
            }
            if try bus.process() { continue }
            let remaining = deadline.remaining
            guard remaining > 0 else {
                throw BusError(
                    "waiting for systemd job \(job) (\(method) \(unit))", code: ETIMEDOUT)
            }
            if cancellation?.isRaised == true {
                throw BusError("waiting for systemd job \(job) (\(method) \(unit)): certreload had to stop", code: ECANCELED)
            }
            // Woken by the bus at once; every 100 ms to notice that the caller gave up.
            try bus.wait(seconds: min(remaining, 0.1))
        }
    }

    /// Bounds each following method call, such as `mainPID(unit:)` (sd-bus's default is 25 s).
    public func setCallTimeout(seconds: Double) {
        bus.setMethodCallTimeout(seconds: seconds)
    }

    /// The main process of a service unit (its `MainPID`); 0 when it has none running.
    public func mainPID(unit: String) throws(BusError) -> Int32 {
        let reply = try bus.call(
            destination: Self.destination, path: Self.path, interface: Self.managerInterface, member: "GetUnit",
            arguments: [unit])
        let unitPath = try reply.readObjectPath(call: "GetUnit")
        let pid = try bus.uint32Property(
            destination: Self.destination, path: unitPath, interface: Self.serviceInterface, member: "MainPID")
        return Int32(bitPattern: pid)
    }
}

/// A match on Manager.JobRemoved that records each job's result; owns the `sd_bus_slot*`.
final class JobRemovedWatch {
    private let bus: BusConnection
    private var slot: OpaquePointer?
    /// Job path → result, for every job that ended while the watch was active.
    private(set) var results: [String: String] = [:]

    init(bus: BusConnection) throws(BusError) {
        self.bus = bus
        let r = sd_bus_match_signal(
            bus.handle, &slot, SystemdManager.destination, SystemdManager.path, SystemdManager.managerInterface,
            "JobRemoved",
            { message, userdata, _ in
                guard let message, let userdata else { return 0 }
                Unmanaged<JobRemovedWatch>.fromOpaque(userdata).takeUnretainedValue().record(message)
                return 0
            },
            Unmanaged.passUnretained(self).toOpaque())
        guard r >= 0 else { throw BusError("sd_bus_match_signal JobRemoved", code: -r) }
    }

    deinit {
        // Dropping the slot removes the match, so the callback never sees a freed `self`.
        if let slot { sd_bus_slot_unref(slot) }
    }

    private func record(_ message: OpaquePointer) {
        var id: UInt32 = 0
        var job: UnsafePointer<CChar>?
        var unit: UnsafePointer<CChar>?
        var result: UnsafePointer<CChar>?
        guard certreload_bus_message_read_job_removed(message, &id, &job, &unit, &result) > 0,
            let job, let result
        else { return }
        results[String(cString: job)] = String(cString: result)
    }
}
