import Benchmark
import TygerBenchmarkSupport
import TygerCore

/// CRC32C and MD5 over one 4 MiB block, the hash chain's per-blob step, and the `buffer gen` fill.
func checksumBenchmarks() {
    Benchmark("Checksums.crc32c 4 MiB", configuration: BenchmarkPresets.block()) {
        (benchmark: Benchmark, data: BenchmarkBytes) in
        var crc: UInt32 = 0
        benchmark.measure(bytes: data.count) { crc = Checksums.crc32c(data.bytes) }
        blackHole(crc)
    } setup: {
        BenchmarkBytes(count: BenchmarkSizes.block, content: .random)
    }

    Benchmark("Checksums.md5Base64 4 MiB", configuration: BenchmarkPresets.block()) {
        (benchmark: Benchmark, data: BenchmarkBytes) in
        var md5 = ""
        benchmark.measure(bytes: data.count) { md5 = Checksums.md5Base64(data.bytes) }
        blackHole(md5)
    } setup: {
        BenchmarkBytes(count: BenchmarkSizes.block, content: .random)
    }

    // One link per blob: SHA-256 over the previous value and the blob's CRC32C text.
    Benchmark("HashChain.append", configuration: BenchmarkPresets.operations()) { benchmark in
        var chain = HashChain()
        for _ in benchmark.scaledIterations {
            blackHole(chain.append("1a2b3c4d"))
        }
    }

    Benchmark("GeneratedData.fill 4 MiB", configuration: BenchmarkPresets.block()) {
        (benchmark: Benchmark, data: BenchmarkBytes) in
        benchmark.measure(bytes: data.count) { GeneratedData.fill(data.memory, streamOffset: 12_345) }
        blackHole(data.memory[17])
    } setup: {
        BenchmarkBytes(count: BenchmarkSizes.block, content: .zeros)
    }
}
