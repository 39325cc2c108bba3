#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value behind a `pthread_mutex_t`: what `Synchronization.Mutex` offers (`withLock`), in a
/// form ThreadSanitizer understands.
///
/// Not `Synchronization.Mutex`: on Linux its lock is a futex word handled inside
/// libswiftSynchronization, which TSan does not see, so every access made under it was
/// reported as a race (an 11-line program of two threads appending under one `Mutex`
/// reproduces it with Swift 6.3.1). `pthread_mutex_lock` is intercepted by TSan, so a race
/// it reports here is one. Not recursive: `withLock` inside `withLock` of the same lock
/// deadlocks, as with `Mutex`.
///
/// `@unchecked Sendable`: `value` is only read or written between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` of `mutex`, which is allocated once and never moves.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: sending Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    package func withLock<Result, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
