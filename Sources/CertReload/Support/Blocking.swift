internal import CCertReloadShims.X509
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Set when the task waiting for a blocking call is cancelled (a deadline, SIGTERM's grace
/// running out); the blocking code polls it between its bounded waits and gives up early.
public final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    public init() {}

    public var isRaised: Bool { raised.load(ordering: .acquiring) }

    public func raise() { raised.store(true, ordering: .releasing) }
}

/// Runs blocking C calls (curl, sd-bus waits, waitpid, fork, TLS socket I/O) on a thread of
/// their own, so that Swift's cooperative pool — one thread per core, two here — never waits
/// on them and timers, signals and other targets keep going.
///
/// Cancelling the calling task raises the body's `CancellationFlag`; the call still waits for
/// the body to return, so a cancelled reload has killed its process group before it ends.
public enum Blocking {
    public static func run<T: Sendable, E: Error>(
        _ body: @escaping @Sendable (CancellationFlag) throws(E) -> T
    ) async throws(E) -> T {
        let flag = CancellationFlag()
        let result: Result<T, E> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
                let started = DedicatedThread.start {
                    let result = Result { () throws(E) -> T in try body(flag) }
                    // This thread ends now: its OpenSSL state goes before the result is seen
                    // (after that the process may exit while the thread is still unwinding).
                    certreload_release_thread_crypto()
                    continuation.resume(returning: result)
                }
                if !started {
                    // No thread could be made (EAGAIN: the process or user limit): run here
                    // rather than fail; this is the only case that blocks a pool thread.
                    continuation.resume(returning: Result { () throws(E) -> T in try body(flag) })
                }
            }
        } onCancel: {
            flag.raise()
        }
        return try result.get()
    }
}

/// A detached pthread running one closure.
enum DedicatedThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread; false when no thread could be created.
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        // Probes and reloads keep little on the stack; 1 MiB instead of 8 MiB of address space.
        pthread_attr_setstacksize(&attributes, 1024 * 1024)
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { argument in
            let work = Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue()
            work.body()
            return nil
        }, work)
        if rc != 0 {
            Unmanaged<Work>.fromOpaque(work).release()
            return false
        }
        return true
    }
}

/// Runs `body` under a time limit: when `seconds` pass first, the body's task is cancelled
/// (raising every `CancellationFlag` below it, which kills commands' process groups and
/// aborts transfers) and then awaited, so nothing it started outlives the call and no state
/// write is cut in half. Returns the body's result and whether the limit cut it short.
public func withTimeLimit<T: Sendable>(
    seconds: Double, _ body: @escaping @Sendable () async -> T
) async -> (value: T, cutShort: Bool) {
    return await withTaskGroup(of: TimeLimitChild<T>.self) { group in
        group.addTask { .done(await body()) }
        group.addTask {
            await Pause.for(.milliseconds(Int64(max(0, seconds) * 1000)))
            return .expired
        }
        var cutShort = false
        while let child = await group.next() {
            switch child {
            case .done(let value):
                group.cancelAll()
                return (value, cutShort)
            case .expired:
                if Task.isCancelled { continue }
                cutShort = true
                group.cancelAll()
            }
        }
        fatalError("unreachable: the body's child always finishes")
    }
}

/// The two children of `withTimeLimit`'s group.
private enum TimeLimitChild<T: Sendable>: Sendable {
    case done(T)
    case expired
}
