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
/// - `TYGER_FAULT_ENABLE`: comma-separated names of ``KnownOpenDefect`` cases to run although still listed as open.
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

/// Faults the suite knows to expose defects that are still open. Each case keeps its trial in the suite; the trial
/// runs when the case is missing from ``open`` (the defect is fixed: delete the case's line there) or named in
/// `TYGER_FAULT_ENABLE`.
public enum KnownOpenDefect: String, CaseIterable, Sendable {
    /// A reader over HTTP (unix socket or TCP) of a buffer whose writer was killed waits forever: the server keeps no
    /// writer lease, so it cannot tell the reader the writer died. The trial instead expects the reader to fail
    /// within the lease bound.
    case httpReaderOfKilledWriterWaits
    /// Disk full under the server's data directory during an HTTP write: the writer sees a 500 and the buffer is not
    /// marked failed. The trial expects a clear disk-full error and a failed buffer.
    case httpDiskFullIsNotReported
    /// A YAML spec whose aliases expand exponentially (a "billion laughs" document of a few hundred bytes) is
    /// expanded without a bound. The trial expects a clear error within seconds.
    case yamlAliasBombIsExpanded

    /// The defects still open. Remove a line once its fix is merged.
    public static let open: Set<KnownOpenDefect> = [
        .httpReaderOfKilledWriterWaits,
        .httpDiskFullIsNotReported,
        .yamlAliasBombIsExpanded,
    ]

    /// Whether trials exposing this defect run.
    public var isEnabled: Bool {
        if !Self.open.contains(self) { return true }
        let named = ProcessInfo.processInfo.environment["TYGER_FAULT_ENABLE"] ?? ""
        return named.split(separator: ",").contains {
            $0.trimmingCharacters(in: .whitespaces) == rawValue || $0 == "all"
        }
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
