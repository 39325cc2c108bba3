
/// A wake-up that is remembered until someone waits for it: `ring()` never blocks, and
/// rings while nobody waits collapse into one.
///
/// Waiting costs no wake-ups: a waiter sleeps until a ring, its deadline, or cancellation.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Bool, Never>?
        var waiterID = 0
    }

    private let state = Locked(State())

    init() {}

    /// Wakes the waiter, or the next one to wait.
    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// Whether a ring is pending (not consumed).
    var isRung: Bool { state.withLock { $0.rung } }

    /// Consumes a pending ring without waiting; whether there was one.
    func consume() -> Bool {
        state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    /// Waits for a ring until `deadline` (nil: no deadline). True when it rang, false on
    /// timeout or cancellation. One waiter at a time.
    func wait(until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        if consume() { return true }
        guard let deadline else { return await waitForRing() }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask {
                await Pause.until(deadline)
                return false
            }
            var rang = await group.next() ?? false
            group.cancelAll()
            // Both children end; a ring that arrived at the deadline is not lost.
            for await result in group { rang = rang || result }
            return rang || consume()
        }
    }

    private func waitForRing() async -> Bool {
        let id = state.withLock { state -> Int in
            state.waiterID += 1
            return state.waiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let resumeNow: Bool? = state.withLock { state in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiter = continuation
                    state.waiterID = id
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard state.waiterID == id, let waiter = state.waiter else { return nil }
                state.waiter = nil
                return waiter
            }
            waiter?.resume(returning: false)
        }
    }
}
