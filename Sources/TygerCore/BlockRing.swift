#if canImport(Glibc)
private import Glibc
#endif

/// One fixed-size, page-aligned block of memory owned by a `BlockRing`.
///
/// Blocks are reused for the whole transfer: a pipeline fills one, hands it on, and returns it to the ring once
/// the bytes are stored or written. `count` is how many bytes are valid.
public struct Block: @unchecked Sendable {
    // @unchecked: a block is handed from stage to stage, and only the stage holding it touches its memory.
    /// The whole block's memory.
    public let memory: UnsafeMutableRawBufferPointer
    /// Index of the block within its ring.
    public let index: Int
    /// Valid bytes at the start of `memory`.
    public var count: Int = 0

    /// The valid bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: memory[0..<count]) }
}

/// A fixed set of reusable blocks: the only data memory a transfer uses.
///
/// Acquiring a block when none is free waits: this is the back-pressure that stops a reader from reading ahead
/// of slow storage. Memory is `capacity × blockSize` for the ring's life, however long the stream.
public final class BlockRing: Sendable {
    /// Bytes per block.
    public let blockSize: Int
    /// Number of blocks.
    public let capacity: Int
    private let free: HandoffQueue<Block>
    private let memory: UnsafeMutableRawBufferPointerBox

    /// Allocates `capacity` blocks of `blockSize` bytes (page-aligned; pages are touched only when first used).
    /// - Precondition: `capacity >= 1` and `blockSize >= 1`.
    public init(capacity: Int, blockSize: Int) {
        precondition(capacity >= 1 && blockSize >= 1, "bad ring shape \(capacity) x \(blockSize)")
        self.blockSize = blockSize
        self.capacity = capacity
        self.memory = UnsafeMutableRawBufferPointerBox(byteCount: capacity * blockSize)
        self.free = HandoffQueue(capacity: capacity)
        for i in 0..<capacity {
            let slice = UnsafeMutableRawBufferPointer(rebasing: memory.buffer[(i * blockSize)..<((i + 1) * blockSize)])
            try! free.pushBlocking(Block(memory: slice, index: i))  // the queue holds exactly `capacity`
        }
    }

    /// Takes a free block, parking the thread until one is returned. `nil` once the ring is shut down.
    public func acquireBlocking() throws -> Block? { try free.popBlocking() }

    /// Takes a free block, suspending until one is returned.
    public func acquire() async throws -> Block? { try await free.pop() }

    /// Returns a block to the ring.
    public func release(_ block: Block) {
        var block = block
        block.count = 0
        try? free.pushBlocking(block)  // never blocks: at most `capacity` blocks exist
    }

    /// Wakes every waiter with `error`; later acquires throw it.
    public func shutDown(_ error: any Error) { free.fail(error) }

    /// Blocks currently free (a snapshot).
    public var freeCount: Int { free.queuedCount }

    package func _checkInvariants() {
        free._checkInvariants()
        precondition(freeCount <= capacity)
    }
}

/// Owns one page-aligned allocation.
final class UnsafeMutableRawBufferPointerBox: @unchecked Sendable {
    // @unchecked: the pointer is immutable; what is stored in the memory is the ring's business.
    let buffer: UnsafeMutableRawBufferPointer

    init(byteCount: Int) {
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 4096, max(byteCount, 1))
        precondition(rc == 0 && raw != nil, "cannot allocate \(byteCount) bytes")
        buffer = UnsafeMutableRawBufferPointer(start: raw, count: byteCount)
    }

    deinit { free(buffer.baseAddress) }
}
