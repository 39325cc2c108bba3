import CCertReloadShims
import Dispatch
import Synchronization
import Testing

@testable import CertReload

/// Counts calls from C callbacks and resumes one waiter when `expected` is reached.
private final class Tally: Sendable {
    private struct State {
        var seen: [Int] = []
        var waiter: CheckedContinuation<Void, Never>?
    }
    // Locked, not Mutex: ThreadSanitizer does not see Mutex's futex on Linux.
    private let state = Locked(State())
    let expected: Int
    init(expected: Int) { self.expected = expected }

    func record(_ value: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.seen.append(value)
            guard state.seen.count == expected else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once `expected` values were recorded, with them in the order they came.
    func wait() async -> [Int] {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.seen.count >= expected { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
        return state.withLock { $0.seen }
    }
}

/// A tally and one value, as the context of one C callback.
private final class Call {
    let tally: Tally
    let value: Int
    init(_ tally: Tally, _ value: Int) { self.tally = tally; self.value = value }
    static let fire: @convention(c) (UnsafeMutableRawPointer?) -> Void = { context in
        let call = Unmanaged<Call>.fromOpaque(context!).takeRetainedValue()
        call.tally.record(call.value)
    }
    func retained() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }
}

@Suite("Global executor: the pool, the timer thread, Pause", .timeLimit(.minutes(1)))
struct GlobalExecutorTests {
    @Test("the pool runs every item exactly once, on at most one thread per CPU")
    func poolRunsEverything() async {
        let count = 20_000
        let tally = Tally(expected: count)
        // Four submitting threads at once, as tasks on several threads enqueue jobs.
        JoinedThreads.run(4) { [tally] in
            for value in 0..<(count / 4) {
                #expect(certreload_pool_submit(Call.fire, Call(tally, value).retained()) == 0)
            }
        }
        let seen = await tally.wait()
        #expect(seen.count == count)
        // Each of the four submitters' values 0..<5,000 ran once per submitter.
        var runs = [Int](repeating: 0, count: count / 4)
        for value in seen { runs[value] += 1 }
        #expect(runs.allSatisfy { $0 == 4 })
        #expect(certreload_pool_threads() >= 1)
        #expect(certreload_pool_threads() <= certreload_pool_width())
        #expect(certreload_pool_width() == certreload_cpu_count())
    }

    @Test("timers fire in deadline order, not in the order they were set")
    func timersInDeadlineOrder() async {
        let tally = Tally(expected: 4)
        // 100 ms apart: the order could only break if setting them took over 300 ms.
        for milliseconds in [400, 100, 300, 200] {
            #expect(certreload_timer_after(Int64(milliseconds) * 1_000_000, Call.fire, Call(tally, milliseconds).retained()) != 0)
        }
        #expect(await tally.wait() == [100, 200, 300, 400])
    }

    @Test("a cancelled timer never fires")
    func timerCancel() async {
        let tally = Tally(expected: 1)
        let cancelled = Call(tally, 1)
        let id = certreload_timer_after(1_000 * 1_000_000, Call.fire, cancelled.retained())
        #expect(id != 0)
        #expect(certreload_timer_cancel(id) == 1)
        Unmanaged.passUnretained(cancelled).release() // the context is ours again
        #expect(certreload_timer_cancel(id) == 0) // gone: a second cancel finds nothing
        // A later timer fires, and alone: the cancelled one (due first) never did.
        #expect(certreload_timer_after(2_000 * 1_000_000, Call.fire, Call(tally, 2).retained()) != 0)
        #expect(await tally.wait() == [2])
    }

    @Test("Pause lasts at least its duration")
    func pauseLasts() async {
        let clock = ContinuousClock()
        let start = clock.now
        await Pause.for(.milliseconds(50))
        #expect(clock.now - start >= .milliseconds(50))
        let deadline = clock.now.advanced(by: .milliseconds(30))
        await Pause.until(deadline)
        #expect(clock.now >= deadline)
        // Zero and negative durations return at once.
        await Pause.for(.zero)
        await Pause.for(.seconds(-5))
    }

    @Test("cancelling a task ends its pause early, whether it is waiting or not yet")
    func pauseCancelled() async {
        // Waiting: cancelled once its timer is set. Were cancellation lost, the hour-long
        // pause would outlast the suite's time limit.
        let armed = Tally(expected: 1)
        let pausing = Task { await Pause.pause(.seconds(3_600), armed: { armed.record(1) }) }
        _ = await armed.wait()
        pausing.cancel()
        await pausing.value
        // Cancelled before it pauses: does not pause, and sets no timer.
        let notArmed = Tally(expected: 1)
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await Pause.pause(.seconds(3_600), armed: { notArmed.record(1) })
            notArmed.record(0)
        }
        await early.value
        #expect(await notArmed.wait() == [0])
    }

    @Test("parallelMap keeps order and maps every element once, on several threads")
    func parallelMapOrder() {
        let input = Array(0..<5_000)
        // Element 0 waits (at most 10 s) until another element has been mapped meanwhile: only
        // a second thread can do that while the first is held here. On one thread, or if the
        // other threads were started only after the caller's share, it times out.
        let another = DispatchSemaphore(value: 0)
        let sawAnother = Atomic<Bool>(false)
        let output = input.parallelMap { value -> Int in
            if value == 0 {
                sawAnother.store(another.wait(timeout: .now() + 10) == .success, ordering: .relaxed)
            } else {
                another.signal()
            }
            return value * 3
        }
        #expect(output == input.map { $0 * 3 })
        let overlapped = sawAnother.load(ordering: .relaxed)
        if certreload_cpu_count() > 1 { #expect(overlapped) }
    }
}
