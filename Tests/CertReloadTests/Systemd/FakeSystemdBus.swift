@testable import CertReload
@testable import CertReloadDemo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A private dbus-daemon with the FAKE systemd of Tests/Support/FakeSystemd.py on it.
/// Both processes are killed (by process group) and reaped on deinit.
final class FakeSystemdBus {
    struct Unit {
        var name: String
        /// JobRemoved result to report, or "never".
        var result: String = "done"
        var mainPID: Int32 = 0
    }

    let directory: TemporaryDirectory
    let address: String
    private let daemon: ChildProcess
    private let mock: ChildProcess

    init(units: [Unit], startupTimeout: Double = 20) throws {
        directory = try TemporaryDirectory("certreload-fake-systemd")
        let socket = directory.file("bus")
        daemon = try ChildProcess.spawn(argv: [
            "dbus-daemon", "--session", "--nofork", "--print-address", "--address=unix:path=\(socket)",
        ])
        guard let line = daemon.readLine(deadline: Deadline(seconds: startupTimeout)), line.hasPrefix("unix:") else {
            throw FakeError("dbus-daemon printed no address: \(daemon.output.lines)")
        }
        address = line

        let parameters = "{\"units\": {" + units.map {
            "\"\($0.name)\": {\"result\": \"\($0.result)\", \"pid\": \($0.mainPID)}"
        }.joined(separator: ", ") + "}}"
        mock = try ChildProcess.spawn(
            argv: [
                "/usr/bin/python3", "-m", "dbusmock", "--system", "-l", directory.file("calls.log"),
                "-t", repositoryRoot + "/Tests/Support/FakeSystemd.py", "-p", parameters,
            ],
            environment: environment(adding: ["DBUS_SYSTEM_BUS_ADDRESS=\(line)"]))

        // Ready once the fake owns org.freedesktop.systemd1; give up at the deadline or
        // when the fake exits.
        let deadline = Deadline(seconds: startupTimeout)
        let bus = try BusConnection(address: address)
        while true {
            if (try? bus.call(
                destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
                member: "GetNameOwner", arguments: ["org.freedesktop.systemd1"])) != nil
            {
                break
            }
            if let ended = mock.waitForExit(deadline: Deadline(seconds: 0.02)) {
                throw FakeError("fake systemd exited (\(ended)): \(mock.output.lines.joined(separator: "\n"))")
            }
            if deadline.hasPassed { throw FakeError("fake systemd not on the bus after \(startupTimeout) s") }
        }
    }

    deinit {
        mock.signalGroup(SIGKILL)
        daemon.signalGroup(SIGKILL)
    }

    /// The methods the fake was called with, e.g. `ReloadUnit "ok.service" "replace"`.
    var calls: [String] {
        directory.read("calls.log").split(separator: "\n").map { line in
            String(line.drop { $0 != " " }.dropFirst())  // drop the timestamp
        }.filter { !$0.hasPrefix("emit ") }
    }
}

struct FakeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
