private import Synchronization

/// A thread-safe running total (bytes moved, blobs stored), read by progress reporters while a pipeline runs.
public final class LockedCounter: Sendable {
    private let state = Mutex<Int64>(0)

    public init() {}

    /// Adds `delta` and returns the new total.
    @discardableResult
    public func add(_ delta: Int64) -> Int64 {
        state.withLock {
            $0 += delta
            return $0
        }
    }

    /// The current total.
    public var value: Int64 { state.withLock { $0 } }
}
