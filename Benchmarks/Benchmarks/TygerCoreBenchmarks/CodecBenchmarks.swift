import Benchmark
import TygerBenchmarkSupport
import TygerCore

/// A block to encode and the scratch memory the codec deflates into.
private final class EncodeFixture: Sendable {
    let input: BenchmarkBytes
    let scratch: BenchmarkBytes?

    init(content: BenchmarkBytes.Content, compression: CompressionLevel) {
        input = BenchmarkBytes(count: BenchmarkSizes.block, content: content)
        let scratchSize = BlobCodec.scratchSize(blockSize: BenchmarkSizes.block, compression: compression)
        scratch = scratchSize > 0 ? BenchmarkBytes(count: scratchSize, content: .zeros) : nil
    }
}

/// A stored (encoded) blob with its metadata, and room to decode it.
private final class DecodeFixture: Sendable {
    let encoded: EncodeFixture
    let stored: BenchmarkBytes
    let metadata: BlobMetadata
    let output: BenchmarkBytes

    init(content: BenchmarkBytes.Content, compression: CompressionLevel) {
        encoded = EncodeFixture(content: content, compression: compression)
        let codec = BlobCodec(format: .native, compression: compression)
        let block = codec.encode(encoded.input.bytes, scratch: encoded.scratch?.memory)
        stored = BenchmarkBytes(count: block.stored.count, content: .zeros)
        stored.memory.copyMemory(from: block.stored)
        metadata = block.metadata
        output = BenchmarkBytes(count: BenchmarkSizes.block, content: .zeros)
        if compression != .none {
            precondition(metadata.properties[BlobMetadata.Key.encoding] == "deflate", "\(content) did not deflate")
        }
    }
}

private func contentName(_ content: BenchmarkBytes.Content) -> String {
    switch content {
    case .zeros: "zeros"
    case .generated: "gen"
    case .random: "random"
    }
}

/// `BlobCodec.encode` for each compression level on compressible (`buffer gen`) and random blocks; `verify`; and
/// `inflate` of deflated blocks. Throughput is in raw (decoded) bytes.
func codecBenchmarks() {
    for content in [BenchmarkBytes.Content.generated, .random] {
        for compression in CompressionLevel.allCases {
            // zlib level 9 runs at tens of MB/s: fewer, longer iterations.
            let configuration =
                compression == .best
                ? BenchmarkPresets.block(maxDuration: .seconds(3), maxIterations: 30) : BenchmarkPresets.block()
            Benchmark(
                "BlobCodec.encode native \(compression) \(contentName(content)) 4 MiB",
                configuration: configuration
            ) { (benchmark: Benchmark, fixture: EncodeFixture) in
                let codec = BlobCodec(format: .native, compression: compression)
                var encoded: EncodedBlock?
                benchmark.measure(bytes: fixture.input.count) {
                    encoded = codec.encode(fixture.input.bytes, scratch: fixture.scratch?.memory)
                }
                blackHole(encoded)
            } setup: {
                EncodeFixture(content: content, compression: compression)
            }
        }
    }

    Benchmark("BlobCodec.verify native raw 4 MiB", configuration: BenchmarkPresets.block()) {
        (benchmark: Benchmark, fixture: DecodeFixture) throws in
        var verified: VerifiedBlob?
        try benchmark.measure(bytes: fixture.stored.count) {
            verified = try BlobCodec.verify(
                fixture.stored.bytes,
                metadata: fixture.metadata,
                format: .native,
                blobName: "0"
            )
        }
        blackHole(verified)
    } setup: {
        DecodeFixture(content: .random, compression: .none)
    }

    for compression in [CompressionLevel.fast, .best] {
        Benchmark("BlobCodec.inflate \(compression)-deflated gen 4 MiB", configuration: BenchmarkPresets.block()) {
            (benchmark: Benchmark, fixture: DecodeFixture) throws in
            try benchmark.measure(bytes: fixture.output.count) {
                try BlobCodec.inflate(fixture.stored.bytes, into: fixture.output.memory, blobName: "0")
            }
            blackHole(fixture.output.memory[4095])
        } setup: {
            DecodeFixture(content: .generated, compression: compression)
        }
    }
}
