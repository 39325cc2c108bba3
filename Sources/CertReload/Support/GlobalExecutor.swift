internal import CCertReloadShims.Executor

/// certreload's own global executor and timers (Sources/CCertReloadShims/executor.c).
///
/// On Linux the runtime's default executor is libdispatch, whose thread-pool monitor wakes
/// once a second for as long as the process lives; a daemon that waits for months would wake
/// 3,600 times an hour for nothing. The pool installed here has the same shape (one thread per
/// CPU, started on first use) but its idle threads wait without a timeout, and `Pause` sleeps
/// on one timer thread that wakes only when a deadline is due.
public enum GlobalExecutor {
    /// Makes the pool Swift's global executor. First thing in `main`, before any task runs.
    public static func install() { certreload_executor_install() }

    /// Pool threads started so far, and the most it starts.
    public static var threads: Int { Int(certreload_pool_threads()) }
    public static var width: Int { Int(certreload_pool_width()) }
}

/// Sleeps that wake only when due (Task.sleep goes to libdispatch's timers and worker threads
/// in Swift 6.3, whatever the global executor). Like `try? await Task.sleep`, a pause ends
/// early, without an error, when its task is cancelled.
public enum Pause {
    public static func `for`(_ duration: Duration) async { await pause(duration) }

    public static func until(_ deadline: ContinuousClock.Instant) async {
        await pause(ContinuousClock.now.duration(to: deadline))
    }

    /// `armed` is called once the timer is set (the tests cancel a pause known to be waiting).
    static func pause(_ duration: Duration, armed: (@Sendable () -> Void)? = nil) async {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || (seconds == 0 && attoseconds > 0) else { return }
        let nanoseconds = seconds >= Int64.max / 1_000_000_000
            ? Int64.max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if Task.isCancelled { return }
        let sleeper = Sleeper()
        let armed = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if sleeper.start(continuation, nanoseconds: nanoseconds) { armed?() }
            }
        } onCancel: {
            sleeper.cancel()
        }
        // No timer thread could be started (EAGAIN): the runtime's own sleep, rather than none.
        if !armed { try? await Task.sleep(for: duration) }
    }
}

/// One pause: resumed exactly once, by the timer thread or by cancellation, whichever takes
/// the continuation first. Lock order: the sleeper's, then the timer table's (executor.c).
private final class Sleeper: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Bool, Never>?
        var timer: UInt64 = 0
        var cancelled = false
    }

    private let state = Locked(State()) // not Mutex: ThreadSanitizer does not see its futex

    /// Sets the timer; true when it is set (false: cancelled already, or no timer thread).
    func start(_ continuation: CheckedContinuation<Bool, Never>, nanoseconds: Int64) -> Bool {
        state.withLock { state in
            if state.cancelled {
                continuation.resume(returning: true)
                return false
            }
            let context = Unmanaged.passRetained(self).toOpaque()
            let timer = certreload_timer_after(nanoseconds, { context in
                Unmanaged<Sleeper>.fromOpaque(context!).takeRetainedValue().fire()
            }, context)
            if timer == 0 {
                Unmanaged<Sleeper>.fromOpaque(context).release()
                continuation.resume(returning: false)
                return false
            }
            state.continuation = continuation
            state.timer = timer
            return true
        }
    }

    private func fire() {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: true)
    }

    func cancel() {
        state.withLock { state in
            state.cancelled = true
            // 0: the timer is firing; `fire` takes the continuation once this lock is free.
            guard let continuation = state.continuation, certreload_timer_cancel(state.timer) == 1 else { return }
            state.continuation = nil
            Unmanaged.passUnretained(self).release()
            continuation.resume(returning: true)
        }
    }
}
