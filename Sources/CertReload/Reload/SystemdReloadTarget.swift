#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reloads or restarts a systemd unit over D-Bus, as `systemctl reload UNIT` does, and
/// waits for the job to end.
public struct SystemdReloadTarget: BlockingReloadTarget {
    public var unit: String
    public var mode: ReloadConfiguration.SystemdMode
    /// The D-Bus address of the bus systemd is on; nil for the system bus
    /// (`$DBUS_SYSTEM_BUS_ADDRESS` when set).
    public var busAddress: String?

    public init(unit: String, mode: ReloadConfiguration.SystemdMode = .reload, busAddress: String? = nil) {
        self.unit = unit
        self.mode = mode
        self.busAddress = busAddress
    }

    public var summary: String { "systemd unit \(unit) (\(mode.rawValue))" }

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        let method = mode.managerMethod
        let job: SystemdJob
        do {
            let manager = try SystemdManager(busAddress: busAddress)
            job = try manager.runJob(mode, unit: unit, timeout: context.timeout, cancellation: context.cancellation)
        } catch {
            throw error.reloadError(unit: unit, doing: "\(method) \(unit)")
        }
        context.logger.debug(
            "systemd job \(job.path) for \(unit) ended: \(job.result)",
            metadata: ["certreload_unit": "\(unit)", "certreload_job": "\(job.path)"])
        guard job.succeeded else {
            throw ReloadError(
                .reloadFailed,
                "systemd could not \(mode.rawValue) \(unit): the job ended with result '\(job.result)' (\(Self.explain(job.result)))",
                fix: "journalctl -u \(unit) -n 50")
        }
        return "systemd \(method) \(unit): done"
    }

    /// What systemd's job results mean, in `systemctl`'s words.
    static func explain(_ result: String) -> String {
        switch result {
        case "failed": "the unit's reload or start command failed"
        case "canceled": "another job replaced it before it finished"
        case "timeout": "the unit's timeout ran out"
        case "dependency": "a unit it depends on failed"
        case "skipped": "the unit was not active"
        case "invalid": "the job type does not apply to the unit's state"
        case "assert", "condition": "a unit condition or assertion was not met"
        case "unsupported": "the unit type does not support it"
        case "once": "the unit may only be started once"
        default: "an unknown result"
        }
    }
}

extension BusError {
    /// This failure worded for the administrator, about `unit` while `doing` something.
    func reloadError(unit: String, doing: String) -> ReloadError {
        let journal = "journalctl -u \(unit) -n 50"
        if isTimeout {
            return ReloadError(
                .reloadTimeout, "\(doing) did not finish in time (\(self))",
                fix: "systemctl status \(unit); \(journal)")
        }
        switch name {
        case "org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed":
            return ReloadError(
                .reloadFailed, "systemd has no unit \(unit) (\(message ?? name ?? ""))",
                fix: "systemctl list-units --all \(ShellQuoting.quote(unit)); check the unit name in the target's reload")
        case "org.freedesktop.systemd1.JobTypeNotApplicable":
            return ReloadError(
                .reloadFailed, "\(unit) cannot reload (\(message ?? "job type not applicable"))",
                fix: "use mode = \"reload-or-restart\" or \"restart\", or add ExecReload= to \(unit)")
        case "org.freedesktop.systemd1.UnitMasked":
            return ReloadError(.reloadFailed, "\(unit) is masked (\(message ?? ""))", fix: "systemctl unmask \(unit)")
        case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired":
            return ReloadError(
                .reloadUnauthorized, "systemd refused \(doing): \(message ?? name ?? "")",
                fix: "run certreload as root (its own unit does), or allow org.freedesktop.systemd1.manage-units for its user with a polkit rule")
        case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
            return ReloadError(
                .reloadUnreachable, "systemd is not on the bus (\(message ?? name ?? ""))",
                fix: "certreload needs systemd as the service manager: systemctl is-system-running")
        case .some(let name) where name.hasPrefix("org.freedesktop.DBus.Error.Spawn."):
            return ReloadError(
                .reloadUnreachable, "systemd is not on the bus (\(message ?? name))",
                fix: "certreload needs systemd as the service manager: systemctl is-system-running")
        case .some:
            return ReloadError(.reloadFailed, "\(doing) failed: \(self)", fix: journal)
        case nil:
            if call.hasPrefix("sd_bus_open") || call.hasPrefix("sd_bus_start") || call.hasPrefix("sd_bus_set_address") {
                return ReloadError(
                    .reloadUnreachable, "cannot connect to the system bus for \(doing): \(self)",
                    fix: "check that dbus runs: systemctl status dbus.socket")
            }
            return ReloadError(.reloadFailed, "\(doing) failed: \(self)", fix: journal)
        }
    }
}
