private import Synchronization
import TygerIO

/// Runs blocking work on a thread of its own (never on the cooperative pool) and awaits its result.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await DedicatedThread.run(name: "tyger-test", body)
}

/// Starts blocking work on a thread of its own without waiting for it.
public func startThread(_ body: @escaping @Sendable () -> Void) {
    DedicatedThread.start(name: "tyger-test", body)
}

/// A value shared between threads and tasks in a test.
public final class Locked<Value: Sendable>: Sendable {
    private let state: Mutex<Value>

    public init(_ value: Value) { state = Mutex(value) }

    /// Runs `body` with the value, under the lock.
    @discardableResult
    public func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R {
        try state.withLock { try body(&$0) }
    }

    /// A copy of the value.
    public var value: Value { state.withLock { $0 } }
}

/// The result of work running on a thread started by `spawnThread`.
public final class ThreadHandle<T: Sendable>: Sendable {
    fileprivate let result = Locked<Result<T, any Error>?>(nil)

    /// Waits (polling, so it never blocks the cooperative pool) for the thread's result.
    public var value: T {
        get async throws {
            while true {
                if let r = result.value { return try r.get() }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }
}

/// Starts `body` on a new thread at once, before returning: unlike `onThread` it does not need a free thread in the
/// cooperative pool to get going, so timing-sensitive work is not delayed by other tests keeping the pool busy.
public func spawnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> ThreadHandle<T> {
    let handle = ThreadHandle<T>()
    DedicatedThread.start(name: "tyger-test") {
        let r = Result { try body() }
        handle.result.withLock { $0 = r }
    }
    return handle
}
