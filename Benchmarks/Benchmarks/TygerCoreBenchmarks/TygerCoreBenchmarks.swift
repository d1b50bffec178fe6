import Benchmark

/// Micro-benchmarks of TygerCore: checksums, the hash chain, the blob codec, the block ring and the handoff queue.
///
/// Run with `tools/run-benchmarks` (all suites) or `tools/run-benchmarks --target TygerCoreBenchmarks`.
let benchmarks: @Sendable () -> Void = {
    checksumBenchmarks()
    codecBenchmarks()
    queueBenchmarks()
}
