public import TygerCore

/// One filled block on its way to storage, with its place in the stream.
public struct Chunk: Sendable {
    /// The blob number this block becomes.
    public var number: Int64
    /// Offset of the block's first byte in the stream.
    public var streamOffset: Int64
    /// The block, holding `block.count` bytes.
    public var block: Block
}

/// Cuts a byte stream into blocks from a `BlockRing`: the first stage of the write pipeline.
///
/// A block is emitted when it is full, or — when a flush interval is set and the source supports timeouts — once
/// the interval has passed since its first byte arrived, so a trickle of data (a line a second) reaches storage
/// within the interval instead of waiting for 4 MiB. When the ring has no free block the chunker waits, and stops
/// reading its source: back-pressure.
public enum Chunker {
    /// Runs until the source ends, blocking the calling (dedicated) thread.
    ///
    /// - Parameters:
    ///   - source: Where the bytes come from.
    ///   - ring: Supplies empty blocks; the consumer of `output` releases them.
    ///   - output: Receives chunks in stream order; closed at end of stream.
    ///   - flushInterval: Emit a partial block this long after its first byte; `nil` or zero to fill blocks.
    ///   - bytesRead: Counts bytes as they arrive.
    ///   - firstNumber: The blob number of the first block (a resumed write continues after the stored ones).
    ///   - firstOffset: The stream offset of the first byte read.
    /// - Returns: The number of bytes read.
    /// - Throws: what the source throws, or the ring's/queue's failure when the pipeline was aborted.
    @discardableResult
    public static func run(
        source: any ByteSource,
        ring: BlockRing,
        output: HandoffQueue<Chunk>,
        flushInterval: Duration?,
        bytesRead: LockedCounter? = nil,
        firstNumber: Int64 = 0,
        firstOffset: Int64 = 0
    ) throws -> Int64 {
        let clock = ContinuousClock()
        let interval = (flushInterval.map { $0 > .zero } ?? false) && source.supportsTimeouts ? flushInterval : nil
        var number = firstNumber
        var offset = firstOffset
        var total: Int64 = 0
        var endOfStream = false
        while !endOfStream {
            guard var block = try ring.acquireBlocking() else { break }
            var firstByteAt: ContinuousClock.Instant?
            fill: while block.count < block.memory.count {
                var wait: Duration?
                if let interval, let firstByteAt {
                    wait = interval - (clock.now - firstByteAt)
                    if wait! <= .zero { break fill }
                }
                let space = UnsafeMutableRawBufferPointer(rebasing: block.memory[block.count...])
                switch try source.read(into: space, waitAtMost: wait) {
                case .bytes(let n):
                    if firstByteAt == nil { firstByteAt = clock.now }
                    block.count += n
                    bytesRead?.add(Int64(n))
                case .timedOut:
                    break fill
                case .endOfStream:
                    endOfStream = true
                    break fill
                }
            }
            if block.count == 0 {
                ring.release(block)
                continue
            }
            let chunk = Chunk(number: number, streamOffset: offset, block: block)
            number += 1
            offset += Int64(block.count)
            total += Int64(block.count)
            try output.pushBlocking(chunk)
        }
        output.close()
        return total
    }
}
