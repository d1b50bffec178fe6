public import TygerCore

#if canImport(Glibc)
private import Glibc
#endif

/// Page-aligned memory owned for a benchmark's life, filled once in its setup.
///
/// A class so a setup closure can hand it to the benchmark closure and free it when the benchmark is released.
public final class BenchmarkBytes: @unchecked Sendable {
    // @unchecked: filled in setup, then only read (or used as scratch by the one benchmark that owns it).
    /// The whole allocation.
    public let memory: UnsafeMutableRawBufferPointer

    /// What to put in the memory.
    public enum Content: Sendable {
        /// Zero-filled pages (touched, so page faults are not measured later).
        case zeros
        /// The `tyger buffer gen` pattern: a 64-byte cycle that deflates to almost nothing.
        case generated
        /// Incompressible pseudo-random bytes from a fixed seed (the same bytes every run).
        case random
    }

    /// Allocates `count` bytes and fills them with `content`.
    public init(count: Int, content: Content) {
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 4096, max(count, 1))
        precondition(rc == 0 && raw != nil, "cannot allocate \(count) bytes")
        memory = UnsafeMutableRawBufferPointer(start: raw, count: count)
        switch content {
        case .zeros:
            memory.initializeMemory(as: UInt8.self, repeating: 0)
        case .generated:
            GeneratedData.fill(memory, streamOffset: 0)
        case .random:
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            let words = memory.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = splitMix64(&state) }
            memory.withMemoryRebound(to: UInt8.self) { bytes in
                for i in (words.count * 8)..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: splitMix64(&state)) }
            }
        }
    }

    deinit { free(memory.baseAddress) }

    /// The bytes, read-only.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(memory) }

    /// The number of bytes.
    public var count: Int { memory.count }
}

/// SplitMix64: a tiny, fast, seedable generator; good enough to defeat deflate.
private func splitMix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Common sizes.
public enum BenchmarkSizes {
    /// One block of the write pipeline: 4 MiB.
    public static let block = 4 << 20
    /// A stream for the pipeline benchmarks: 256 MiB.
    public static let stream = 256 << 20
}
