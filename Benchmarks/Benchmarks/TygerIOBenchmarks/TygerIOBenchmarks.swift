import Benchmark

/// Benchmarks of TygerIO and the pipelines above it: the chunker, pipe copies through each source/sink kind, and
/// `BufferWriter.write` / `BufferReader.read` end to end over `InMemoryBlobStore`.
///
/// Run with `tools/run-benchmarks` (all suites) or `tools/run-benchmarks --target TygerIOBenchmarks`.
let benchmarks: @Sendable () -> Void = {
    chunkerBenchmarks()
    pipeBenchmarks()
    pipelineBenchmarks()
}
