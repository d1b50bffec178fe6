import TygerCore

/// A few long-lived threads for blocking file-system calls made from async code (blob puts and gets), so they do
/// not occupy Swift's cooperative pool, whose threads (one per core) are better spent on checksums and compression.
public final class BlockingPool: Sendable {
    /// The pool shared by the stores of a process (4 threads).
    public static let shared = BlockingPool(threads: 4)

    private let jobs: HandoffQueue<@Sendable () -> Void>

    /// Starts `threads` threads; they live as long as the process.
    public init(threads: Int) {
        precondition(threads >= 1, "a blocking pool needs at least one thread, got \(threads)")
        jobs = HandoffQueue(capacity: 1024)
        for i in 0..<threads {
            DedicatedThread.start(name: "tyger-blocking-\(i)") { [jobs] in
                while let job = try? jobs.popBlocking() { job() }
            }
        }
    }

    /// Runs `body` on one of the pool's threads and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try jobs.pushBlocking { continuation.resume(with: Result { try body() }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
