import Synchronization
import TygerModel

/// A one-shot signal that any number of tasks can wait for.
final class Trigger: Sendable {
    private struct State {
        var fired = false
        var nextId = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelledEarly: Set<Int> = []
    }
    private let state = Mutex(State())

    init() {}

    /// Whether `fire()` was called.
    var isFired: Bool { state.withLock { $0.fired } }

    /// Wakes every waiter, now and later. Idempotent.
    func fire() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.fired else { return [] }
            s.fired = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Returns once the trigger fired or the waiting task is cancelled.
    func wait() async {
        let id = state.withLock { s -> Int in
            s.nextId += 1
            return s.nextId
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.fired || s.cancelledEarly.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let w = s.waiters.removeValue(forKey: id) { return w }
                s.cancelledEarly.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}

/// Runs `work`, cancelling it when `trigger` fires first.
///
/// - Returns: `work`'s result, or `nil` when the trigger fired first.
func untilTriggered<T: Sendable>(_ trigger: Trigger, _ work: @escaping @Sendable () async -> T) async -> T? {
    if trigger.isFired { return nil }
    return await withTaskGroup(of: T?.self) { group in
        group.addTask { await work() }
        group.addTask {
            await trigger.wait()
            return nil
        }
        let first = await group.next()!  // two children were added
        group.cancelAll()
        _ = await group.next()  // the other child, now cancelled
        return first
    }
}
