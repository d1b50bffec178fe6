#if canImport(Glibc)
private import Glibc
#endif

/// A bounded FIFO that connects dedicated I/O threads and async tasks, with back-pressure in both directions.
///
/// Threads use `pushBlocking`/`popBlocking`, which park the thread on a condition variable; tasks use `push`/`pop`,
/// which suspend. Either side may be either kind. Storage is a fixed ring of `capacity` slots (rounded up to a power
/// of two internally, indexed with a mask); the queue never holds more than `capacity` elements, so memory is bounded
/// whatever the producer does.
///
/// Invariants (checked by `_checkInvariants()` in tests): `0 <= count <= capacity`; async pushers wait only while the
/// queue is full; async poppers wait only while it is empty and open.
///
/// `close()` ends the stream after the queued elements; `fail(_:)` ends it at once with an error for every waiter.
public final class HandoffQueue<Element: Sendable>: @unchecked Sendable {
    // @unchecked: every field below is read and written only with `mutex` held.
    private var slots: [Element?]
    private let mask: Int
    private var head = 0
    private var count = 0
    /// The maximum number of queued elements.
    public let capacity: Int
    private var closed = false
    private var failure: (any Error)?
    private var asyncPoppers: [CheckedContinuation<Element?, any Error>] = []
    private var asyncPushers: [(Element, CheckedContinuation<Void, any Error>)] = []
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    /// Creates an empty queue.
    /// - Precondition: `capacity >= 1`.
    public init(capacity: Int) {
        precondition(capacity >= 1, "HandoffQueue capacity must be at least 1, got \(capacity)")
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = capacity
        self.slots = Array(repeating: nil, count: size)
        self.mask = size - 1
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    private func lock() { pthread_mutex_lock(&mutex) }
    private func unlock() { pthread_mutex_unlock(&mutex) }

    private func enqueueLocked(_ element: Element) {
        slots[(head + count) & mask] = element
        count += 1
    }

    private func dequeueLocked() -> Element {
        let element = slots[head]!  // count > 0, so the head slot is occupied
        slots[head] = nil
        head = (head + 1) & mask
        count -= 1
        return element
    }

    /// Outcome of a push attempt made under the lock.
    private enum PushResult {
        case handedTo(CheckedContinuation<Element?, any Error>)
        case queued
        case full
        case rejected(any Error)
    }

    private func tryPushLocked(_ element: Element) -> PushResult {
        if let failure { return .rejected(failure) }
        if closed { return .rejected(TygerCoreError(.cancelled, "push to a closed queue")) }
        if !asyncPoppers.isEmpty { return .handedTo(asyncPoppers.removeFirst()) }
        if count < capacity {
            enqueueLocked(element)
            return .queued
        }
        return .full
    }

    /// After a pop freed a slot: move one waiting async pusher in. Returns its continuation to resume.
    private func admitPusherLocked() -> CheckedContinuation<Void, any Error>? {
        guard count < capacity, !asyncPushers.isEmpty else { return nil }
        let (element, continuation) = asyncPushers.removeFirst()
        enqueueLocked(element)
        return continuation
    }

    /// Appends an element, parking the calling thread while the queue is full.
    ///
    /// - Throws: the error given to `fail(_:)`, or `TygerCoreError` `.cancelled` if the queue was closed.
    public func pushBlocking(_ element: Element) throws {
        lock()
        while true {
            switch tryPushLocked(element) {
            case .handedTo(let continuation):
                unlock()
                continuation.resume(returning: element)
                return
            case .queued:
                pthread_cond_broadcast(&condition)
                unlock()
                return
            case .rejected(let error):
                unlock()
                throw error
            case .full:
                pthread_cond_wait(&condition, &mutex)
            }
        }
    }

    /// Appends an element, suspending while the queue is full.
    ///
    /// - Throws: the error given to `fail(_:)`, or `TygerCoreError` `.cancelled` if the queue was closed.
    public func push(_ element: Element) async throws {
        // Fast path: room in the ring and nobody waiting to be handed the element.
        lock()
        if failure == nil, !closed, asyncPoppers.isEmpty, count < capacity {
            enqueueLocked(element)
            pthread_cond_broadcast(&condition)
            unlock()
            return
        }
        unlock()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock()
            switch tryPushLocked(element) {
            case .handedTo(let popper):
                unlock()
                popper.resume(returning: element)
                continuation.resume()
            case .queued:
                pthread_cond_broadcast(&condition)
                unlock()
                continuation.resume()
            case .rejected(let error):
                unlock()
                continuation.resume(throwing: error)
            case .full:
                asyncPushers.append((element, continuation))
                unlock()
            }
        }
    }

    /// Removes the oldest element, parking the calling thread while the queue is empty.
    ///
    /// - Returns: The element, or `nil` once the queue is closed and drained.
    /// - Throws: the error given to `fail(_:)`.
    public func popBlocking() throws -> Element? {
        lock()
        while true {
            if let failure {
                unlock()
                throw failure
            }
            if count > 0 {
                let element = dequeueLocked()
                let pusher = admitPusherLocked()
                pthread_cond_broadcast(&condition)
                unlock()
                pusher?.resume()
                return element
            }
            if closed {
                unlock()
                return nil
            }
            pthread_cond_wait(&condition, &mutex)
        }
    }

    /// Removes the oldest element, suspending while the queue is empty.
    ///
    /// - Returns: The element, or `nil` once the queue is closed and drained.
    /// - Throws: the error given to `fail(_:)`.
    public func pop() async throws -> Element? {
        // Fast path: an element is ready (the common case under load), no continuation needed.
        lock()
        if failure == nil, count > 0 {
            let element = dequeueLocked()
            let pusher = admitPusherLocked()
            pthread_cond_broadcast(&condition)
            unlock()
            pusher?.resume()
            return element
        }
        unlock()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Element?, any Error>) in
            lock()
            if let failure {
                unlock()
                continuation.resume(throwing: failure)
            } else if count > 0 {
                let element = dequeueLocked()
                let pusher = admitPusherLocked()
                pthread_cond_broadcast(&condition)
                unlock()
                pusher?.resume()
                continuation.resume(returning: element)
            } else if closed {
                unlock()
                continuation.resume(returning: nil)
            } else {
                asyncPoppers.append(continuation)
                unlock()
            }
        }
    }

    /// Removes the oldest element if one is queued now; never waits.
    public func tryPop() -> Element? {
        lock()
        guard failure == nil, count > 0 else {
            unlock()
            return nil
        }
        let element = dequeueLocked()
        let pusher = admitPusherLocked()
        pthread_cond_broadcast(&condition)
        unlock()
        pusher?.resume()
        return element
    }

    /// Ends the stream: poppers drain what is queued, then get `nil`; later pushes throw.
    public func close() {
        lock()
        closed = true
        let poppers = count == 0 ? asyncPoppers : []
        if count == 0 { asyncPoppers.removeAll() }
        pthread_cond_broadcast(&condition)
        unlock()
        for popper in poppers { popper.resume(returning: nil) }
    }

    /// Ends the stream at once: every waiter and every later call throws `error`. Queued elements are dropped.
    public func fail(_ error: any Error) {
        lock()
        if failure == nil { failure = error }
        let poppers = asyncPoppers
        let pushers = asyncPushers
        asyncPoppers.removeAll()
        asyncPushers.removeAll()
        while count > 0 { _ = dequeueLocked() }
        pthread_cond_broadcast(&condition)
        unlock()
        for popper in poppers { popper.resume(throwing: error) }
        for (_, pusher) in pushers { pusher.resume(throwing: error) }
    }

    /// The number of queued elements (a snapshot).
    public var queuedCount: Int {
        lock()
        defer { unlock() }
        return count
    }

    /// Checks the queue's invariants; for tests.
    package func _checkInvariants() {
        lock()
        defer { unlock() }
        precondition(count >= 0 && count <= capacity, "count \(count) outside 0...\(capacity)")
        precondition(asyncPushers.isEmpty || count == capacity, "async pushers wait while the queue has room")
        precondition(asyncPoppers.isEmpty || count == 0, "async poppers wait while elements are queued")
        var occupied = 0
        for slot in slots where slot != nil { occupied += 1 }
        precondition(occupied == count, "\(occupied) occupied slots but count \(count)")
    }
}
