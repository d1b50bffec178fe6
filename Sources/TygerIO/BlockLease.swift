public import TygerCore

/// Holds a ring block while some stage uses it and returns it to the ring when the last reference goes away.
public final class BlockLease: Sendable {
    public let block: Block
    private let ring: BlockRing

    public init(_ block: Block, ring: BlockRing) {
        self.block = block
        self.ring = ring
    }

    deinit { ring.release(block) }
}
