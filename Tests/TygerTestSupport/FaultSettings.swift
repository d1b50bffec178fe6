import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How much of the fault suite to run, from the environment: `swift test` (CI) runs the bounded form, `tools/faults`
/// raises the counts.
///
/// - `TYGER_FUZZ_ITERATIONS`: generated inputs per parser (default 10,000).
/// - `TYGER_FAULT_TRIALS`: kill -9 trials per path (default 20).
/// - `TYGER_FAULT_SEED`: the base seed (default 1); trial `i` of a suite uses `seed + i`, printed on failure, so
///   `TYGER_FAULT_SEED=S TYGER_FAULT_TRIALS=1` replays trial `S`.
/// - `TYGER_SOAK_SCALE`: a percentage of the soak's counts (default 100).
/// - `TYGER_FAULT_REPORT`: a file each suite appends its figures to (one line each), for `tools/faults`' summary.
public enum FaultSettings {
    /// Generated inputs per parser.
    public static var fuzzIterations: Int { integer("TYGER_FUZZ_ITERATIONS", default: 10_000) }

    /// Kill -9 trials per path.
    public static var trials: Int { integer("TYGER_FAULT_TRIALS", default: 20) }

    /// The base seed.
    public static var seed: UInt64 { UInt64(integer("TYGER_FAULT_SEED", default: 1)) }

    /// The soak's scale in percent.
    public static var soakPercent: Int { integer("TYGER_SOAK_SCALE", default: 100) }

    /// Appends `line` to the report file, when one is named.
    public static func report(_ line: String) {
        guard let path = ProcessInfo.processInfo.environment["TYGER_FAULT_REPORT"], !path.isEmpty else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        try? TestFiles.writeAll(fd, Array((line + "\n").utf8))
    }

    private static func integer(_ name: String, default value: Int) -> Int {
        guard let text = ProcessInfo.processInfo.environment[name], let n = Int(text), n >= 0 else { return value }
        return n
    }
}

/// Runs `body`, giving up after `limit`.
///
/// - Returns: What `body` returns, or `nil` when it was still running after `limit` (it is cancelled then, and this
///   returns once it has ended).
/// - Throws: What `body` throws.
public func withinTime<T: Sendable>(
    _ limit: Duration,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = try await group.next()!  // two tasks were added
        group.cancelAll()
        return first
    }
}
