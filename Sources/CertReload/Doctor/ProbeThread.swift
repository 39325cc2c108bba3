#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs one blocking closure (a TLS probe, the forked access probe) on a new detached pthread
/// and resumes the caller when it returns, so Swift's cooperative pool never waits on it.
///
/// The lead's `Blocking.run` on main does the same with cancellation; once it lands, doctor
/// can call it instead (the bodies here are bounded by their own deadlines).
enum ProbeThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let started = start { continuation.resume(returning: body()) }
            // No thread could be made (EAGAIN): run here rather than fail.
            if !started { continuation.resume(returning: body()) }
        }
    }

    private static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
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
