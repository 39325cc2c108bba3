internal import CCertReloadShims.Executor
internal import CCertReloadShims.X509
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes to distinct indices from concurrent chunks.
///
/// `@unchecked Sendable`: each chunk writes only its own elements, through the buffer's
/// pointer (no access to a shared variable), and they are read only after every thread has
/// been joined.
private final class ResultSlots<T>: @unchecked Sendable {
    let values: UnsafeMutableBufferPointer<T?>
    let nextChunk = Atomic<Int>(0)
    init(count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: nil)
    }
    deinit {
        values.deinitialize()
        values.deallocate()
    }
}

extension Array where Element: Sendable {
    /// Maps over the array on every core; order is kept. Small inputs run inline.
    ///
    /// The calling thread works too, beside one joined thread per other core (no Dispatch:
    /// its worker threads would start libdispatch's 1 s pool monitor in the daemon).
    func parallelMap<T: Sendable>(minimumBatch: Int = 16, _ transform: @Sendable (Element) -> T) -> [T] {
        if count < minimumBatch * 2 { return map(transform) }
        let slots = ResultSlots<T>(count: count)
        let chunks = Swift.min(count / minimumBatch, 64)
        let chunkSize = (count + chunks - 1) / chunks
        self.withUnsafeBufferPointer { input in
            nonisolated(unsafe) let input = input
            withoutActuallyEscaping(transform) { transform in
                let work: @Sendable () -> Void = {
                    while true {
                        let chunk = slots.nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
                        let start = chunk * chunkSize
                        guard chunk < chunks, start < input.count else { return }
                        for index in start..<Swift.min(start + chunkSize, input.count) {
                            slots.values[index] = transform(input[index])
                        }
                    }
                }
                JoinedThreads.run(Swift.min(chunks, Int(certreload_cpu_count())), work)
            }
        }
        return slots.values.map { $0! }
    }
}

/// Runs `body` on `count` threads at once, the calling thread one of them, and returns when
/// all have finished. A thread that cannot be created leaves its share to the others.
enum JoinedThreads {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func run(_ count: Int, _ body: @escaping @Sendable () -> Void) {
        var started: [pthread_t] = []
        for _ in 1..<Swift.max(count, 1) {
            let work = Unmanaged.passRetained(Work(body)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { argument in
                Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue().body()
                // The thread ends here: its OpenSSL state goes with it (the checks use OpenSSL).
                certreload_release_thread_crypto()
                return nil
            }, work)
            if rc == 0 {
                started.append(thread)
            } else {
                Unmanaged<Work>.fromOpaque(work).release()
            }
        }
        body()
        for thread in started { pthread_join(thread, nil) }
    }
}
