import Benchmark
import TygerBenchmarkSupport
import TygerCore
import TygerIO

#if canImport(Glibc)
import Glibc
#endif

/// One way to move bytes through a pipe.
private struct PipeVariant: Sendable {
    let name: String
    /// Whether the writer may hand its pages to the pipe by reference (`vmsplice`): safe here, the payload never
    /// changes.
    let immutablePages: Bool
    let makeSink: @Sendable (Int32) -> any ByteSink
    let makeSource: @Sendable (Int32) -> any ByteSource
}

private let pipeVariants: [PipeVariant] = [
    PipeVariant(
        name: "DescriptorSink(write) -> DescriptorSource",
        immutablePages: false,
        makeSink: { DescriptorSink(fd: $0, mode: .write) },
        makeSource: { DescriptorSource(fd: $0) }
    ),
    PipeVariant(
        name: "DescriptorSink(vmsplice) -> DescriptorSource",
        immutablePages: true,
        makeSink: { DescriptorSink(fd: $0, mode: .vmsplice) },
        makeSource: { DescriptorSource(fd: $0) }
    ),
    PipeVariant(
        name: "DispatchIOSink -> DispatchIOSource",
        immutablePages: false,
        makeSink: { DispatchIOSink(fd: $0) },
        makeSource: { DispatchIOSource(fd: $0) }
    ),
]

/// 256 MiB through a 1 MiB pipe: a writer thread sends one 4 MiB block 64 times through a `ByteSink`, a reader thread
/// reads it through a `ByteSource` into a 4 MiB buffer. The reader stops after exactly 256 MiB, so no variant depends
/// on end-of-file delivery; descriptors are closed only after both sides (and their Dispatch channels) are gone.
func pipeBenchmarks() {
    for variant in pipeVariants {
        Benchmark("Pipe 256 MiB \(variant.name)", configuration: BenchmarkPresets.stream()) {
            (benchmark: Benchmark, buffers: PipeBuffers) async throws in
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw TygerIOError.system("pipe") }
            let (readEnd, writeEnd) = (fds[0], fds[1])
            defer {
                close(readEnd)
                close(writeEnd)
            }
            let total = BenchmarkSizes.stream
            try await benchmark.measure(bytes: total) {
                async let written: Void = DedicatedThread.run(name: "bench-pipe-writer") {
                    let sink = variant.makeSink(writeEnd)
                    let chunk = OutputChunk(
                        bytes: buffers.payload.bytes,
                        immutablePages: variant.immutablePages,
                        owner: nil
                    )
                    for _ in 0..<(total / buffers.payload.count) {
                        try sink.write(chunk)
                    }
                    try sink.finish()
                }
                async let read = DedicatedThread.run(name: "bench-pipe-reader") {
                    let source = variant.makeSource(readEnd)
                    var count = 0
                    while count < total {
                        let space = UnsafeMutableRawBufferPointer(
                            rebasing: buffers.target.memory[0..<min(buffers.target.count, total - count)]
                        )
                        guard case .bytes(let n) = try source.read(into: space, waitAtMost: nil) else { break }
                        count += n
                    }
                    return count
                }
                try await written
                let count = try await read
                precondition(count == total, "read \(count) of \(total) bytes")
            }
        } setup: {
            PipeBuffers()
        }
    }
}

/// The writer's payload and the reader's buffer, one block each.
final class PipeBuffers: Sendable {
    let payload = BenchmarkBytes(count: BenchmarkSizes.block, content: .random)
    let target = BenchmarkBytes(count: BenchmarkSizes.block, content: .zeros)
}
