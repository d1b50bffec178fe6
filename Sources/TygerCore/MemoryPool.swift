private import Synchronization

/// Page-aligned memory blocks kept for reuse, by size class (powers of two from 64 KiB), at most `limit` bytes in all:
/// fresh memory costs a page fault and a cleared page per 4 KiB.
public final class MemoryPool: Sendable {
    private struct Block: @unchecked Sendable {
        let memory: UnsafeMutableRawBufferPointer
    }
    private struct State: ~Copyable {
        var free: [Int: [Block]] = [:]
        var bytes = 0
    }
    private let state = Mutex(State())
    private let limit: Int
    private let largest: Int

    /// - Parameters:
    ///   - limit: The most bytes kept for reuse.
    ///   - largest: The largest block ever asked for (a precondition of ``take(_:)``).
    public init(limit: Int, largest: Int) {
        self.limit = limit
        self.largest = largest
    }

    static func sizeClass(_ count: Int) -> Int {
        var size = 64 << 10
        while size < count { size <<= 1 }
        return size
    }

    /// A block of at least `count` bytes (its size class).
    public func take(_ count: Int) -> UnsafeMutableRawBufferPointer {
        precondition(count <= largest, "a block of \(count) bytes")
        let size = Self.sizeClass(count)
        if let block = state.withLock({ s -> Block? in
            guard let block = s.free[size]?.popLast() else { return nil }
            s.bytes -= size
            return block
        }) {
            return block.memory
        }
        return UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    }

    /// Keeps `memory` (from ``take(_:)``) for reuse, or frees it past the limit.
    public func put(_ memory: UnsafeMutableRawBufferPointer) {
        let block = Block(memory: memory)
        let kept = state.withLock { s -> Bool in
            guard s.bytes + memory.count <= limit else { return false }
            s.free[memory.count, default: []].append(block)
            s.bytes += memory.count
            return true
        }
        if !kept { memory.deallocate() }
    }
}
