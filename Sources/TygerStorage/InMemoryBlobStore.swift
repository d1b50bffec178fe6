private import Synchronization
public import TygerCore

/// A blob store in memory: for tests and benchmarks. Same semantics as the file store, including the lease.
public final class InMemoryBlobStore: BlobStore {
    private struct State {
        var exists = false
        var blobs: [String: StoredBlob] = [:]
        var leaseTaken = false
        var leaseHeld = false
    }
    private let state = Mutex(State())
    public let location: String

    public init(name: String = "memory", createContainer: Bool = true) {
        self.location = "memory://\(name)"
        if createContainer { state.withLock { $0.exists = true } }
    }

    public func containerExists() async throws -> Bool { state.withLock { $0.exists } }

    public func createContainer() async throws { state.withLock { $0.exists = true } }

    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        try BlobName.validate(name)
        let blob = StoredBlob(copying: bytes, metadata: metadata)
        try state.withLock {
            guard $0.exists else { throw BlobStoreError(.containerNotFound, "the buffer does not exist") }
            guard $0.blobs[name] == nil else { throw BlobStoreError(.alreadyExists, "blob \(name) already exists") }
            $0.blobs[name] = blob
        }
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        try BlobName.validate(name)
        return try state.withLock {
            guard $0.exists else { throw BlobStoreError(.containerNotFound, "the buffer does not exist") }
            return $0.blobs[name]
        }
    }

    public func head(_ name: String) async throws -> BlobMetadata? { try await get(name)?.metadata }

    public func sync() async throws {}

    public func acquireWriterLease() async throws -> any WriterLease {
        try state.withLock {
            guard !$0.leaseHeld else { throw BlobStoreError(.leaseHeld, "another writer is writing this buffer") }
            $0.leaseHeld = true
            $0.leaseTaken = true
        }
        return Lease(store: self)
    }

    public func writerState() async throws -> WriterState {
        state.withLock { $0.leaseHeld ? .active : ($0.leaseTaken ? .gone : .notStarted) }
    }

    /// Test hooks: replace, drop or damage blobs behind the pipeline's back.
    package func _replace(_ name: String, with blob: StoredBlob?) { state.withLock { $0.blobs[name] = blob } }
    package func _blob(_ name: String) -> StoredBlob? { state.withLock { $0.blobs[name] } }
    package var _names: [String] { state.withLock { Array($0.blobs.keys) } }
    /// Simulates a writer that died holding the lease.
    package func _abandonLease() { state.withLock { $0.leaseHeld = false } }

    private final class Lease: WriterLease {
        let store: InMemoryBlobStore
        init(store: InMemoryBlobStore) { self.store = store }
        func release() async { store.state.withLock { $0.leaseHeld = false } }
    }
}
