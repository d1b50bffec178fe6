import TygerIO
private import Synchronization

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
