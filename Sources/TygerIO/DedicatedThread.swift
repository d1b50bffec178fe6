private import CTygerNative

#if canImport(Glibc)
private import Glibc
#endif

/// Runs blocking work on a thread of its own, so blocking syscalls (FIFO opens, pipe reads and writes) never
/// occupy Swift's cooperative pool.
public enum DedicatedThread {
    /// Runs `body` on a new thread and returns its result asynchronously.
    ///
    /// - Parameter body: Blocking work. It should watch for its own cancellation signal (a closed queue, a failed
    ///   ring): the thread is not interrupted when the awaiting task is cancelled.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public static func run<T: Sendable>(
        name: String = "tyger-io",
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let box = ThreadBody {
                continuation.resume(with: Result { try body() })
            }
            spawn(box, name: name)
        }
    }

    /// Starts `body` on a new detached thread without waiting for it.
    public static func start(name: String = "tyger-io", _ body: @escaping @Sendable () -> Void) {
        spawn(ThreadBody(body), name: name)
    }

    private static func spawn(_ box: ThreadBody, name: String) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 1 << 20)
        var thread: pthread_t = 0
        let context = Unmanaged.passRetained(box).toOpaque()
        let rc = pthread_create(
            &thread,
            &attributes,
            { raw in
                let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()  // passRetained above
                box.body()
                return nil
            },
            context
        )
        pthread_attr_destroy(&attributes)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        _ = name
    }
}

private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
