import ArgumentParser
import TygerCore
import TygerIO

extension BufferCommand {
    struct Gen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate SIZE bytes of deterministic test data (the 64-byte pattern upstream Tyger uses)."
        )

        @Argument(help: "How many bytes, e.g. 10G, 512M, 1.5K.")
        var size: String

        @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
        var output: String?

        @OptionGroup var global: GlobalOptions

        func validate() throws { _ = try parseSize(size, option: "SIZE") }

        func run() async throws {
            let total = try parseSize(size, option: "SIZE")
            let fd: Int32
            if let path = output { fd = try await openPath(path, forWriting: true) } else { fd = 1 }
            defer { if output != nil { FileDescriptorOps.close(fd) } }
            try await DedicatedThread.run(name: "tyger-gen") {
                // One 4 MiB block of the pattern (its 64-byte period divides the block), never modified after this,
                // so it can be handed to a pipe by reference.
                let block = GenBlock(count: 4 << 20)
                let sink = DescriptorSink(fd: fd, mode: .vmsplice)
                var remaining = total
                while remaining > 0 {
                    let n = Int(min(Int64(block.bytes.count), remaining))
                    try sink.write(
                        OutputChunk(
                            bytes: UnsafeRawBufferPointer(rebasing: block.bytes[0..<n]),
                            immutablePages: true,
                            owner: block
                        )
                    )
                    remaining -= Int64(n)
                }
            }
        }
    }
}

/// The generator's immutable block; lives for the whole process (pipes may still reference its pages).
final class GenBlock: @unchecked Sendable {
    // @unchecked: filled once in init and never written again.
    let bytes: UnsafeRawBufferPointer
    init(count: Int) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        GeneratedData.fill(memory, streamOffset: 0)
        bytes = UnsafeRawBufferPointer(memory)
    }
}
