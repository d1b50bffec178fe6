import Benchmark
import TygerBenchmarkSupport
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage

/// A sink that drops every byte: measures the read pipeline without an output device.
final class DiscardingSink: ByteSink {
    func write(_ chunk: OutputChunk) throws {}
    func finish() throws {}
}

/// A buffer written once in setup, read by every iteration.
final class WrittenBuffer: Sendable {
    let store: InMemoryBlobStore
    let summary: TransferSummary

    init(compression: CompressionLevel) async throws {
        store = InMemoryBlobStore()
        var options = WriteOptions()
        options.compression = compression
        summary = try await BufferWriter.write(
            from: GeneratedSource(size: Int64(BenchmarkSizes.stream)),
            to: store,
            options: options
        )
        precondition(summary.bytes == BenchmarkSizes.stream, "setup wrote \(summary.bytes) bytes")
    }
}

/// `BufferWriter.write` of 256 MiB of `buffer gen` data into a fresh `InMemoryBlobStore` (default options: 4 MiB
/// blocks, dop 16), and `BufferReader.read` of such a buffer into a discarding sink (default options: dop 32).
/// Throughput is in raw bytes; the store's own copies (`StoredBlob(copying:)`) are part of what is measured.
func pipelineBenchmarks() {
    for compression in [CompressionLevel.none, .fast] {
        Benchmark(
            "BufferWriter.write 256 MiB gen -> InMemoryBlobStore (\(compression))",
            configuration: BenchmarkPresets.stream(maxDuration: .seconds(6))
        ) { benchmark async throws in
            var options = WriteOptions()
            options.compression = compression
            var store: InMemoryBlobStore? = InMemoryBlobStore()
            let source = GeneratedSource(size: Int64(BenchmarkSizes.stream))
            var summary: TransferSummary?
            try await benchmark.measure(bytes: BenchmarkSizes.stream) {
                summary = try await BufferWriter.write(from: source, to: store!, options: options)  // set above
            }
            store = nil  // frees the 256 MiB outside the measured region
            precondition(summary?.bytes == Int64(BenchmarkSizes.stream), "wrote \(String(describing: summary))")
            blackHole(store)
        }
    }

    for compression in [CompressionLevel.none, .fast] {
        Benchmark(
            "BufferReader.read 256 MiB (\(compression)) -> discarding sink",
            configuration: BenchmarkPresets.stream(maxDuration: .seconds(6))
        ) { (benchmark: Benchmark, buffer: WrittenBuffer) async throws in
            var summary: TransferSummary?
            let sink = DiscardingSink()
            try await benchmark.measure(bytes: BenchmarkSizes.stream) {
                summary = try await BufferReader.read(from: buffer.store, to: sink)
            }
            precondition(summary?.bytes == Int64(BenchmarkSizes.stream), "read \(String(describing: summary))")
        } setup: {
            try await WrittenBuffer(compression: compression)
        }
    }
}
