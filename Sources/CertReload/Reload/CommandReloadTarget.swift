import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
internal import CCertReloadShims.Access

/// Runs a program as argv (never through a shell) to reload a server, such as
/// `["/usr/sbin/postfix", "reload"]`.
///
/// Its stdout and stderr go to the log (the last 64 KiB); a run past the timeout has its
/// whole process group killed.
public struct CommandReloadTarget: BlockingReloadTarget {
    public var argv: [String]
    /// Seconds; the context's timeout bounds it too.
    public var timeout: Double

    /// How much of the command's output is kept for the log and the error message.
    static let outputLimit = 64 * 1024
    /// How long a timed-out command gets between SIGTERM and SIGKILL.
    static let terminationGrace = 1.0

    public init(argv: [String], timeout: Double) {
        self.argv = argv
        self.timeout = timeout
    }

    public var summary: String { "command \(ShellQuoting.join(argv))" }

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        guard let program = argv.first, !program.isEmpty else {
            throw ReloadError(.reloadFailed, "the reload command is empty", fix: "set reload.command to an argv list such as [\"/usr/sbin/postfix\", \"reload\"]")
        }
        let shown = ShellQuoting.join(argv)
        let limit = min(timeout, context.timeout)
        var logger = context.logger
        logger[metadataKey: "certreload_command"] = "\(program)"

        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(argv: argv, outputLimit: Self.outputLimit)
        } catch {
            throw ReloadError(
                .reloadFailed, "cannot run \(shown): \(error)",
                fix: error.code == ENOENT ? "check the path: ls -l \(ShellQuoting.quote(program))" : nil)
        }
        logger.debug("started \(shown)", metadata: ["certreload_pid": "\(child.pid)"])
        let outcome = child.run(deadline: Deadline(seconds: limit), grace: Self.terminationGrace, cancellation: context.cancellation)
        let lines = child.output.lines
        if child.output.dropped > 0 {
            logger.info("(\(child.output.dropped) earlier bytes of output from \(program) not kept)")
        }
        for line in lines { logger.info("\(line)") }
        // The last 10 lines, each cut to 300 characters: a command that prints one huge line
        // must not make the error unreadable (the log keeps the whole bounded output).
        let tail = lines.suffix(10).map { $0.count > 300 ? "…" + String($0.suffix(300)) : $0 }
        let tailText = tail.isEmpty ? "" : "; its last output:\n" + tail.map { "  " + $0 }.joined(separator: "\n")

        switch outcome {
        case .exited(0):
            return "ran \(shown): exit status 0" + (lines.last.map { ": \($0)" } ?? "")
        case .exited(let status):
            throw ReloadError(
                .reloadFailed, "\(shown) exited with status \(status)\(tailText)",
                fix: "run it by hand to see why: \(shown)")
        case .signaled(let signal):
            throw ReloadError(
                .reloadFailed, "\(shown) was killed by signal \(signal) (\(SignalNames.name(of: signal)))\(tailText)",
                fix: "run it by hand to see why: \(shown)")
        case .cancelled:
            throw ReloadError(
                .reloadTimeout,
                "\(shown) was cut short: certreload had to stop (its deadline or shutdown grace ran out) and killed its process group\(tailText)",
                fix: "find why it takes so long by running it by hand: \(shown)")
        case .timedOut:
            throw ReloadError(
                .reloadTimeout,
                "\(shown) did not finish within \(Self.seconds(limit)); certreload killed its process group\(tailText)",
                fix: "find why it hangs by running it by hand, or raise the target's timeout")
        }
    }

    static func seconds(_ value: Double) -> String { DurationText.seconds(value) }
}

/// Quoting for showing an argv so that a person can paste it into a shell.
enum ShellQuoting {
    static func quote(_ word: String) -> String {
        let safe = word.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "_-./=:@%+,".utf8.contains(byte)
            }
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    static func join(_ argv: [String]) -> String {
        argv.map(quote).joined(separator: " ")
    }
}

/// The failure of `posix_spawn`: its errno.
struct SpawnError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { errnoDescription(code) }
}

/// What a program's stdout and stderr said, keeping only the last `limit` bytes.
struct OutputTail {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    /// Bytes that were dropped from the front to stay within the limit.
    private(set) var dropped = 0

    init(limit: Int) {
        self.limit = limit
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: chunk)
        if bytes.count > limit {
            let excess = bytes.count - limit
            bytes.removeFirst(excess)
            dropped += excess
        }
    }

    /// The output as lines, without empty trailing ones.
    var lines: [String] {
        String(decoding: bytes, as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
            .reversed().drop(while: { $0.isEmpty }).reversed()
    }
}

/// A child started with `posix_spawn` in its own process group, with stdin from /dev/null
/// and stdout+stderr into one pipe. Kills its group and reaps it on deinit if still running.
///
/// Not thread-safe; one owner waits for it.
final class ChildProcess {
    enum Outcome: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        /// The caller gave up (its cancellation flag was raised) and the group was killed.
        case cancelled
    }

    let pid: pid_t
    /// Read end of the output pipe (non-blocking), -1 once it is at end of file.
    private var outputFD: Int32
    private(set) var output: OutputTail
    /// How it ended, once reaped.
    private(set) var outcome: Outcome?

    private init(pid: pid_t, outputFD: Int32, outputLimit: Int) {
        self.pid = pid
        self.outputFD = outputFD
        self.output = OutputTail(limit: outputLimit)
    }

    deinit {
        if outcome == nil {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            _ = valueOrErrno { waitpid(pid, &status, 0) }
        }
        if outputFD >= 0 { close(outputFD) }
    }

    /// Starts `argv` (a name without "/" is looked up in `$PATH`). `environment` entries are
    /// "NAME=value"; nil inherits certreload's environment. Signal dispositions and mask are
    /// reset to the defaults in the child.
    static func spawn(argv: [String], environment: [String]? = nil, outputLimit: Int = 64 * 1024) throws(SpawnError) -> ChildProcess {
        guard let program = argv.first else { throw SpawnError(code: EINVAL) }
        var fds: [Int32] = [-1, -1]
        let piped = certreload_pipe_cloexec(&fds)
        guard piped == 0 else { throw SpawnError(code: -piped) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // dup2 clears close-on-exec on 1 and 2; the pipe's own descriptors close at exec.
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let cArguments = argv.map { strdup($0) }
        defer { cArguments.forEach { free($0) } }
        let cEnvironment = environment?.map { strdup($0) }
        defer { cEnvironment?.forEach { free($0) } }

        var pid: pid_t = 0
        let r: Int32 = (cArguments + [nil]).withUnsafeBufferPointer { arguments in
            func start(_ envp: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
                program.contains("/")
                    ? posix_spawn(&pid, program, &actions, &attributes, arguments.baseAddress!, envp)
                    : posix_spawnp(&pid, program, &actions, &attributes, arguments.baseAddress!, envp)
            }
            guard let cEnvironment else { return start(environ) }
            return (cEnvironment + [nil]).withUnsafeBufferPointer { start($0.baseAddress!) }
        }
        close(fds[1])
        guard r == 0 else {
            close(fds[0])
            throw SpawnError(code: r)
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        return ChildProcess(pid: pid, outputFD: fds[0], outputLimit: outputLimit)
    }

    /// Collects output until the child exits or the deadline passes; then SIGTERM to its
    /// process group, SIGKILL after `grace` seconds, and reaps it.
    /// A raised `cancellation` ends the wait early the same way, and the outcome says so.
    func run(deadline: Deadline, grace: Double, cancellation: CancellationFlag? = nil) -> Outcome {
        if let status = waitForExit(deadline: deadline, cancellation: cancellation) { return status }
        let cut: Outcome = cancellation?.isRaised == true ? .cancelled : .timedOut
        kill(-pid, SIGTERM)
        if waitForExit(deadline: Deadline(seconds: grace)) != nil { return cut }
        kill(-pid, SIGKILL)
        _ = waitForExit(deadline: Deadline(seconds: 3600))
        return cut
    }

    /// Sends `signal` to the child's process group.
    func signalGroup(_ signal: Int32) {
        if outcome == nil { kill(-pid, signal) }
    }

    /// Reads output and waits for the child until `deadline`; nil when it is still running.
    func waitForExit(deadline: Deadline, cancellation: CancellationFlag? = nil) -> Outcome? {
        while true {
            if let outcome = reap() {
                drainOutput()
                return outcome
            }
            let remaining = deadline.remaining
            if remaining <= 0 || cancellation?.isRaised == true { return nil }
            // Wake for output at once, and every 20 ms to look for the exit.
            let slice = Int32(max(1, min(remaining, 0.02) * 1000))
            if outputFD >= 0 {
                var entry = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, slice) > 0 { drainOutput() }
            } else {
                _ = poll(nil, 0, slice)
            }
        }
    }

    /// Reads a line of output until `deadline` (for a child that prints a ready line, such as
    /// `dbus-daemon --print-address`); nil when none came in time.
    func readLine(deadline: Deadline) -> String? {
        while true {
            if let newline = output.bytes.firstIndex(of: 10) {
                return String(decoding: output.bytes[..<newline], as: UTF8.self)
            }
            let remaining = deadline.remaining
            if remaining <= 0 || outputFD < 0 { return nil }
            var entry = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, Int32(max(1, remaining * 1000))) > 0 { drainOutput() }
        }
    }

    private func drainOutput() {
        guard outputFD >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let fd = outputFD
            let n = (try? valueOrErrno { buffer.withUnsafeMutableBytes { SystemCall.read(fd, $0.baseAddress, $0.count) } }.get()) ?? -1
            if n > 0 {
                buffer.withUnsafeBytes { output.append(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                continue
            }
            if n == 0 {
                close(outputFD)
                outputFD = -1
            }
            return  // EOF, EAGAIN (a grandchild may still hold the pipe) or an error
        }
    }

    private func reap() -> Outcome? {
        if let outcome { return outcome }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == 0 { return nil }
        if r < 0 {
            if errno == EINTR { return nil }
            outcome = .exited(-1)  // ECHILD: someone else reaped it
            return outcome
        }
        let signal = status & 0x7f
        outcome = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        return outcome
    }
}
