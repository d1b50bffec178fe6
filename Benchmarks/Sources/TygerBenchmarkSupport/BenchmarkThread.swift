private import Foundation

/// Starts plain threads for benchmarks that need a blocking producer or consumer outside Swift's cooperative pool.
public enum BenchmarkThread {
    /// Runs `body` on a new detached thread.
    public static func start(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.stackSize = 1 << 20
        thread.start()
    }
}
