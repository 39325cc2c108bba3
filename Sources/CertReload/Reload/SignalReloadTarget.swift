#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends a signal (SIGHUP for nginx's master, dovecot) to a server's process, found by its
/// pid file or by its systemd unit's MainPID.
///
/// Does not wait for the server to finish reloading: a signal has no answer.
public struct SignalReloadTarget: BlockingReloadTarget {
    /// As configured: "HUP", "SIGHUP", "usr1".
    public var signalName: String
    public var pidFile: String?
    public var unit: String?
    /// The D-Bus address for looking up `unit`; nil for the system bus.
    public var busAddress: String?

    public init(signal: String, pidFile: String? = nil, unit: String? = nil, busAddress: String? = nil) {
        self.signalName = signal
        self.pidFile = pidFile
        self.unit = unit
        self.busAddress = busAddress
    }

    public var summary: String {
        let signal = SignalNames.number(signalName).map(SignalNames.name(of:)) ?? signalName
        if let pidFile { return "\(signal) to the process in \(pidFile)" }
        if let unit { return "\(signal) to the main process of \(unit)" }
        return signal
    }

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        guard let number = SignalNames.number(signalName) else {
            throw ReloadError(
                .reloadFailed, "unknown signal '\(signalName)'",
                fix: "use a signal name such as HUP, USR1 or USR2")
        }
        let name = SignalNames.name(of: number)
        let pid: pid_t
        let source: String
        if let pidFile {
            pid = try Self.readPIDFile(pidFile)
            source = "pid file \(pidFile)"
        } else if let unit {
            pid = try Self.mainPID(unit: unit, busAddress: busAddress, timeout: context.timeout)
            source = "unit \(unit)"
        } else {
            throw ReloadError(
                .reloadFailed, "the signal reload names neither a pid file nor a unit",
                fix: "set pidfile = \"/run/nginx.pid\" or unit = \"nginx.service\" in the target's reload")
        }
        guard kill(pid, 0) == 0 else {
            let code = errno
            if code == ESRCH {
                throw ReloadError(
                    .reloadFailed, "process \(pid) from \(source) is not running (a stale pid file?)",
                    fix: pidFile != nil
                        ? "start the server, or point pidfile at the file it writes now: ls -l \(ShellQuoting.quote(pidFile!))"
                        : "systemctl status \(unit ?? "")")
            }
            throw Self.killError(code, pid: pid, name: name, source: source)
        }
        if let pidFile, let reused = Self.reusedPID(pid, pidFile: pidFile) {
            throw ReloadError(
                .reloadFailed,
                "process \(pid) from pid file \(pidFile) is \(reused); it started after the pid file was written, so the server that wrote it is gone and its pid was reused. certreload did not signal it",
                fix: "start the server, or point pidfile at the file it writes now: ls -l \(ShellQuoting.quote(pidFile))")
        }
        guard kill(pid, number) == 0 else {
            throw Self.killError(errno, pid: pid, name: name, source: source)
        }
        context.logger.info(
            "sent \(name) to process \(pid) from \(source)",
            metadata: ["certreload_pid": "\(pid)", "certreload_signal": "\(name)"])
        return "sent \(name) to process \(pid) (from \(source))"
    }

    private static func killError(_ code: Int32, pid: pid_t, name: String, source: String) -> ReloadError {
        if code == EPERM {
            return ReloadError(
                .reloadUnauthorized, "not allowed to send \(name) to process \(pid) from \(source): \(errnoDescription(code))",
                fix: "run certreload as root, or as the user the server runs as")
        }
        return ReloadError(.reloadFailed, "kill \(name) \(pid) (from \(source)): \(errnoDescription(code))")
    }

    /// The process id in a pid file: decimal digits and surrounding whitespace, nothing else,
    /// and not 0 or 1. Never follows a FIFO or reads a large file.
    static func readPIDFile(_ path: String) throws(ReloadError) -> pid_t {
        let fix = "check that the server runs and that pidfile names the file it writes: ls -l \(ShellQuoting.quote(path))"
        switch SafeFile.read(path, limit: 64) {
        case .success(let bytes):
            guard let pid = parsePID(bytes) else {
                let shown = String(decoding: bytes.prefix(24), as: UTF8.self).debugDescription
                throw ReloadError(
                    .reloadFailed, "pid file \(path) does not hold a process id (it reads \(shown))", fix: fix)
            }
            guard pid > 1 else {
                throw ReloadError(
                    .reloadFailed, "pid file \(path) names process \(pid); certreload refuses to signal it", fix: fix)
            }
            return pid
        case .failure(.missing):
            throw ReloadError(.reloadFailed, "pid file \(path) does not exist (is the server running?)", fix: fix)
        case .failure(.notRegularFile(let kind)):
            throw ReloadError(.reloadFailed, "pid file \(path) is a \(kind), not a regular file", fix: fix)
        case .failure(.tooLarge(let size, _)):
            throw ReloadError(.reloadFailed, "pid file \(path) is \(size) bytes; a process id is far shorter", fix: fix)
        case .failure(.failed(let call, let code)):
            throw ReloadError(
                code == EACCES ? .reloadUnauthorized : .reloadFailed, "\(call) \(path): \(errnoDescription(code))",
                fix: code == EACCES ? "run certreload as root, or make \(path) readable by its user" : fix)
        }
    }

    /// "`comm` (started …)" when the process started more than 2 s after the pid file's last
    /// change: a server writes its pid file after it starts, so a younger process holding
    /// that pid is another program. nil when it looks right or cannot be told.
    static func reusedPID(_ pid: pid_t, pidFile: String) -> String? {
        var info = stat()
        guard stat(pidFile, &info) == 0, let started = processStartTime(pid) else { return nil }
        let written = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        guard started > written + 2 else { return nil }
        let comm: String
        if case .success(let bytes) = SafeFile.read("/proc/\(pid)/comm", limit: 64) {
            comm = "'" + String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7f }, as: UTF8.self) + "'"
        } else {
            comm = "another program"
        }
        return "\(comm), started \(Int(started - written)) s after the pid file was written"
    }

    /// When a process started, in seconds since the epoch (/proc/PID/stat field 22 and the
    /// boot time in /proc/stat).
    static func processStartTime(_ pid: pid_t) -> Double? {
        guard case .success(let statBytes) = SafeFile.read("/proc/\(pid)/stat", limit: 4096),
            case .success(let bootBytes) = SafeFile.read("/proc/stat", limit: 1 << 20),
            let close = statBytes.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        // Fields after "(comm)": state is field 3, starttime field 22.
        let fields = statBytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let ticks = Double(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        let boot = String(decoding: bootBytes, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6).trimmingSpaces) }
        guard let boot else { return nil }
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return boot + ticks / (hertz > 0 ? hertz : 100)
    }

    /// Decimal digits with optional surrounding whitespace; nil for anything else.
    static func parsePID(_ bytes: [UInt8]) -> pid_t? {
        let isSpace: (UInt8) -> Bool = { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        let digits = bytes.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
        guard !digits.isEmpty, digits.count <= 10,
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return value <= Int(Int32.max) ? pid_t(value) : nil
    }

    static func mainPID(unit: String, busAddress: String?, timeout: Double) throws(ReloadError) -> pid_t {
        let pid: Int32
        do {
            let manager = try SystemdManager(busAddress: busAddress)
            manager.setCallTimeout(seconds: timeout)
            pid = try manager.mainPID(unit: unit)
        } catch {
            throw error.reloadError(unit: unit, doing: "finding the main process of \(unit)")
        }
        guard pid > 1 else {
            throw ReloadError(
                .reloadFailed, "unit \(unit) has no main process running (MainPID is \(pid))",
                fix: "systemctl status \(unit)")
        }
        return pid
    }
}

/// Signal names as configured ("HUP", "SIGHUP", "usr1") and as shown ("SIGHUP").
enum SignalNames {
    static let table: [(String, Int32)] = [
        ("HUP", SIGHUP), ("INT", SIGINT), ("QUIT", SIGQUIT), ("KILL", SIGKILL), ("USR1", SIGUSR1),
        ("USR2", SIGUSR2), ("PIPE", SIGPIPE), ("ALRM", SIGALRM), ("TERM", SIGTERM), ("CHLD", SIGCHLD),
        ("CONT", SIGCONT), ("STOP", SIGSTOP), ("TSTP", SIGTSTP), ("WINCH", SIGWINCH), ("ABRT", SIGABRT),
    ]

    static func number(_ name: String) -> Int32? {
        var key = name.uppercased()
        if key.hasPrefix("SIG") { key.removeFirst(3) }
        return table.first { $0.0 == key }?.1
    }

    static func name(of number: Int32) -> String {
        table.first { $0.1 == number }.map { "SIG" + $0.0 } ?? "signal \(number)"
    }
}
