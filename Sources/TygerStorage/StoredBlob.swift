public import TygerCore

#if canImport(Glibc)
private import Glibc
#endif

/// A fetched blob: its bytes (heap memory or a read-only file mapping) and its metadata.
///
/// The bytes stay valid, and unchanged, while the object lives.
public final class StoredBlob: @unchecked Sendable {
    // @unchecked: immutable after init; the memory is owned by this object and never written.
    /// The stored bytes (deflated when the native encoding says so).
    public let bytes: UnsafeRawBufferPointer
    /// Content-MD5 and user metadata.
    public let metadata: BlobMetadata
    /// True when `bytes` are pages of a write-once file mapping, safe to hand to a pipe by reference.
    public let isMapped: Bool
    private let deallocate: Deallocation

    enum Deallocation {
        case none
        case free
        case munmap(Int)
        case recycle(UnsafeMutableRawBufferPointer, @Sendable (UnsafeMutableRawBufferPointer) -> Void)
    }

    /// A blob holding a copy of `bytes`.
    public convenience init(copying bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        if bytes.count > 0 { memory.copyMemory(from: bytes) }
        self.init(
            bytes: UnsafeRawBufferPointer(rebasing: memory[0..<bytes.count]),
            metadata: metadata,
            mapped: false,
            deallocate: .free
        )
    }

    /// A blob that takes ownership of `memory` (allocated with `UnsafeMutableRawBufferPointer.allocate`), of which the
    /// first `count` bytes are the blob. Saves a copy for stores that fill their own memory (HTTP downloads).
    public convenience init(adopting memory: UnsafeMutableRawBufferPointer, count: Int, metadata: BlobMetadata) {
        precondition(count <= memory.count, "blob of \(count) bytes in \(memory.count) bytes of memory")
        self.init(
            bytes: UnsafeRawBufferPointer(rebasing: memory[0..<count]),
            metadata: metadata,
            mapped: false,
            deallocate: .free
        )
    }

    /// A blob in `memory`, of which the first `count` bytes are the blob, that hands `memory` to `recycle` when it
    /// goes (to be filled again: memory that was used once costs no page faults).
    public convenience init(
        adopting memory: UnsafeMutableRawBufferPointer,
        count: Int,
        metadata: BlobMetadata,
        recycle: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void
    ) {
        precondition(count <= memory.count, "blob of \(count) bytes in \(memory.count) bytes of memory")
        self.init(
            bytes: UnsafeRawBufferPointer(rebasing: memory[0..<count]),
            metadata: metadata,
            mapped: false,
            deallocate: .recycle(memory, recycle)
        )
    }

    init(bytes: UnsafeRawBufferPointer, metadata: BlobMetadata, mapped: Bool, deallocate: Deallocation) {
        self.bytes = bytes
        self.metadata = metadata
        self.isMapped = mapped
        self.deallocate = deallocate
    }

    deinit {
        switch deallocate {
        case .none: break
        case .free: UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate()
        case .munmap(let length): munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), length)
        case .recycle(let memory, let recycle): recycle(memory)
        }
    }
}
