import Benchmark
import TygerBenchmarkSupport
import TygerCore
import TygerIO

/// `Chunker.run` cutting 256 MiB of `GeneratedSource` into 4 MiB ring blocks on a dedicated thread, with an async
/// consumer that returns each block to the ring at once: the write pipeline's first stage without the encoders.
func chunkerBenchmarks() {
    Benchmark(
        "Chunker GeneratedSource 256 MiB -> 4 MiB blocks (ring 4)",
        configuration: BenchmarkPresets.stream()
    ) { (benchmark: Benchmark, ring: BlockRing) async in
        let chunks = HandoffQueue<Chunk>(capacity: ring.capacity)
        let source = GeneratedSource(size: Int64(BenchmarkSizes.stream))
        var blocks = 0
        var total: Int64 = 0
        await benchmark.measure(bytes: BenchmarkSizes.stream) {
            async let read = DedicatedThread.run(name: "bench-chunker") {
                try Chunker.run(source: source, ring: ring, output: chunks, flushInterval: nil)
            }
            while let chunk = try! await chunks.pop() {  // never throws: nobody fails this queue
                blocks += 1
                ring.release(chunk.block)
            }
            total = try! await read  // GeneratedSource never throws
        }
        precondition(total == BenchmarkSizes.stream && blocks == BenchmarkSizes.stream / BenchmarkSizes.block)
    } setup: {
        // Made once, so its pages are faulted in by the warm-up and not measured.
        BlockRing(capacity: 4, blockSize: BenchmarkSizes.block)
    }
}
