import Foundation
import TygerClient
import TygerControlPlane
import TygerCore
import TygerModel
import TygerStorage

/// The writer leases of buffers kept in an S3-compatible store, in the server's database (``BufferManager``), the
/// same records and states as the data plane's HTTP writers have (``DataPlaneWriterLeases``).
///
/// S3 has no expiring locks: a lease object in the bucket outlives a writer that dies, and its readers would wait for
/// ever. Behind a server the lease is a database record instead, which runs out 8 s after the writer's last renewal,
/// so readers learn that the buffer was abandoned; every server on a shared database sees the same record.
///
/// - A client takes, renews and releases it through ``S3AccessController`` (`PUT /s3/{id}/lease`), and names it in
///   every presign request of a write: a write is presigned only for the live lease's writer (or, with no lease live,
///   for a writer without one, as upstream's).
/// - The server's own writers (runs) take it through ``S3LeasedBlobStore``.
/// - On release the server reads `.bufferend` from the store: `complete` or `failed` as it says, `abandoned` without
///   one. The client's word is not taken for it.
struct S3WriterLeases: Sendable {
    let manager: BufferManager
    let buffers: S3Buffers

    private func now() -> Date { manager.clock.now() }

    /// Takes the lease of buffer `id` for `leaseId` (or extends it, for a retried acquire).
    ///
    /// - Throws: `APIError` `.leaseAlreadyPresent` (another writer's live lease), `.bufferAlreadyWritten` (a write
    ///   already ended); `TygerControlPlaneError` `notFound` (a soft-deleted buffer).
    func acquire(_ id: String, leaseId: String) async throws {
        _ = try await manager.acquireWriterLease(id: id, leaseId: leaseId).grantedLease(acquiring: true, at: now())
    }

    /// Takes the lease of buffer `id`'s abandoned write for `leaseId`, to continue it.
    ///
    /// - Throws: `APIError` `.leaseAlreadyPresent` (a writer's live lease), `.bufferAlreadyWritten` (the write ended:
    ///   `.bufferend` is stored); `TygerControlPlaneError` `notFound` (a soft-deleted buffer).
    func resume(_ id: String, leaseId: String) async throws {
        if try await buffers.store(for: id).head(BufferBlobNames.end) != nil { throw APIError.bufferAlreadyWritten }
        _ = try await manager.resumeWriterLease(id: id, leaseId: leaseId).grantedLease(acquiring: true, at: now())
    }

    /// Extends this writer's live lease.
    ///
    /// - Throws: `APIError` `.leaseLost` when it ran out or ended, `.leaseAlreadyPresent` when it is another writer's.
    func renew(_ id: String, leaseId: String) async throws {
        _ = try await manager.renewWriterLease(id: id, leaseId: leaseId).grantedLease(acquiring: false, at: now())
    }

    /// Ends this writer's lease with what the store's `.bufferend` says (`abandoned` when there is none); a lease
    /// that is not this writer's is left alone. Returns the state the write ended in.
    @discardableResult
    func release(_ id: String, leaseId: String) async throws -> BufferWriteState {
        let end = try await buffers.store(for: id).get(BufferBlobNames.end)
        let state: BufferWriteState =
            switch end.map({ BufferEndMetadata.decode(Array($0.bytes)) }) {
            case nil: .abandoned
            case .failed?: .failed
            case .complete?: .complete
            }
        try await manager.endWrite(id: id, leaseId: leaseId, state: state)
        return state
    }

    /// Where buffer `id`'s write stands, for readers; `nil` when no writer took a lease.
    func state(_ id: String) async throws -> BufferWriteState? {
        try await manager.writeState(id: id)
    }

    /// Checks a presigned write: with a lease ID it must be the live lease's (a lease this server no longer finds
    /// live is renewed if it can be); without one, no lease may be live.
    ///
    /// - Throws: `APIError` `.leaseIdMissing`, `.leaseAlreadyPresent`, `.leaseLost`.
    func verify(_ id: String, leaseId: String?) async throws {
        let lease = try await manager.writerLease(id: id)
        let live = lease.flatMap { $0.state(at: now()) == .writing ? $0 : nil }
        guard let leaseId else {
            if live != nil { throw APIError.leaseIdMissing }
            return
        }
        if let live {
            guard live.leaseId == leaseId else { throw APIError.leaseAlreadyPresent }
            return
        }
        try await renew(id, leaseId: leaseId)
    }
}

/// A buffer in the S3 store as the server's own writers and readers (runs) use it: the blobs are the store's, the
/// writer lease is the database's (``S3WriterLeases``), as for clients behind the presigning route.
struct S3LeasedBlobStore: BlobStore {
    let store: S3BlobStore
    let leases: S3WriterLeases

    var location: String { store.location }
    func containerExists() async throws -> Bool { try await store.containerExists() }
    func createContainer() async throws { try await store.createContainer() }
    func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        try await store.put(name, bytes: bytes, metadata: metadata)
    }
    func get(_ name: String) async throws -> StoredBlob? { try await store.get(name) }
    func head(_ name: String) async throws -> BlobMetadata? { try await store.head(name) }
    func inspect(_ name: String) async throws -> BlobStat? { try await store.inspect(name) }
    func sync() async throws { try await store.sync() }

    func acquireWriterLease() async throws -> any WriterLease { try await takeLease(resuming: false) }

    func resumeWriterLease() async throws -> any WriterLease { try await takeLease(resuming: true) }

    private func takeLease(resuming: Bool) async throws -> any WriterLease {
        let id = store.container
        let leaseId = UUID().uuidString.lowercased()
        do {
            if resuming {
                try await leases.resume(id, leaseId: leaseId)
            } else {
                try await leases.acquire(id, leaseId: leaseId)
            }
        } catch let error as APIError where error == .leaseAlreadyPresent {
            throw BlobStoreError(.leaseHeld, "another writer is writing buffer \(id)")
        } catch let error as APIError where error == .bufferAlreadyWritten {
            throw BlobStoreError(
                .alreadyExists,
                resuming
                    ? "the buffer's write has ended (.bufferend is stored): there is nothing to resume"
                    : "buffer cannot be overwritten: it already holds data (buffers are write-once)"
            )
        }
        let leases = leases
        return RenewedWriterLease(
            every: HTTPBlobStore.leaseRenewalInterval,  // as the CLI's HTTP writers: a quarter of the 8 s lease
            renew: { try? await leases.renew(id, leaseId: leaseId) },
            release: { _ = try? await leases.release(id, leaseId: leaseId) }
        )
    }

    func writerState() async throws -> WriterState {
        switch try await leases.state(store.container) {
        case nil: .notStarted
        case .writing?: .active
        case .complete?, .failed?, .abandoned?: .gone
        }
    }
}
