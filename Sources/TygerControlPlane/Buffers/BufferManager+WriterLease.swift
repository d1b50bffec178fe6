import Foundation
import TygerModel

extension BufferManager {
    /// Takes (or, for the same lease ID, extends) a buffer's writer lease, for `configuration.writerLeaseDuration`.
    ///
    /// - Parameters:
    ///   - id: The buffer (container) ID.
    ///   - leaseId: The writer's lease ID.
    /// - Returns: ``BufferWriterLeaseOutcome/granted(_:)``, or ``BufferWriterLeaseOutcome/refused(_:)`` when
    ///   another writer holds the lease or a write already ended (complete, failed or abandoned).
    /// - Throws: ``TygerControlPlaneError`` `notFound` for a soft-deleted buffer; `databaseFailure`.
    public func acquireWriterLease(
        id: String,
        leaseId: String
    ) async throws(TygerControlPlaneError)
        -> BufferWriterLeaseOutcome
    {
        try await refuseSoftDeleted(id: id)
        return try await takeWriterLease(id: id, leaseId: leaseId) { .acquire(until: $0) }
    }

    /// Takes the writer lease of an abandoned write (or of one no lease covered) for a writer that continues it
    /// (`buffer write --resume`), for `configuration.writerLeaseDuration`.
    ///
    /// - Returns: ``BufferWriterLeaseOutcome/granted(_:)``, or ``BufferWriterLeaseOutcome/refused(_:)`` when a
    ///   writer holds the lease or the write ended (complete or failed).
    /// - Throws: ``TygerControlPlaneError`` `notFound` for a soft-deleted buffer; `databaseFailure`.
    public func resumeWriterLease(
        id: String,
        leaseId: String
    ) async throws(TygerControlPlaneError)
        -> BufferWriterLeaseOutcome
    {
        try await refuseSoftDeleted(id: id)
        return try await takeWriterLease(id: id, leaseId: leaseId) { .resume(until: $0) }
    }

    /// Applies `change(until)` to the lease, `until` being `configuration.writerLeaseDuration` from now.
    private func takeWriterLease(
        id: String,
        leaseId: String,
        _ change: @escaping @Sendable (Date) -> BufferWriterLeaseChange
    ) async throws(TygerControlPlaneError) -> BufferWriterLeaseOutcome {
        let now = now()
        let until = RFC3339.adding(configuration.writerLeaseDuration, to: now)
        return try await repo {
            try await self.repository.changeWriterLease(bufferId: id, leaseId: leaseId, change(until), now: now)
        }
    }

    /// Extends a live writer lease by `configuration.writerLeaseDuration`.
    ///
    /// - Returns: ``BufferWriterLeaseOutcome/granted(_:)``; `refused` or `none` when the lease is not this writer's
    ///   live lease (it ran out, ended, or was never taken).
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func renewWriterLease(
        id: String,
        leaseId: String
    ) async throws(TygerControlPlaneError)
        -> BufferWriterLeaseOutcome
    {
        let now = now()
        let until = RFC3339.adding(configuration.writerLeaseDuration, to: now)
        return try await repo {
            try await self.repository.changeWriterLease(bufferId: id, leaseId: leaseId, .renew(until: until), now: now)
        }
    }

    /// Ends a write: `complete` or `failed` once `.bufferend` is stored, `abandoned` when the writer lets go of the
    /// lease without it.
    ///
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    @discardableResult
    public func endWrite(
        id: String,
        leaseId: String,
        state: BufferWriteState
    ) async throws(TygerControlPlaneError)
        -> BufferWriterLeaseOutcome
    {
        let now = now()
        return try await repo {
            try await self.repository.changeWriterLease(bufferId: id, leaseId: leaseId, .end(state), now: now)
        }
    }

    /// The buffer's writer lease, or `nil` when no writer ever took one.
    ///
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func writerLease(id: String) async throws(TygerControlPlaneError) -> BufferWriterLease? {
        try await repo { try await self.repository.writerLease(bufferId: id) }
    }

    /// Where the buffer's write stands, or `nil` when no writer ever took a lease (a lease-less writer, or none yet).
    ///
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func writeState(id: String) async throws(TygerControlPlaneError) -> BufferWriteState? {
        let now = now()
        return try await writerLease(id: id)?.state(at: now)
    }

    /// Refuses a soft-deleted buffer: reading or writing one needs `tyger buffer restore` first (upstream allows
    /// it; this is a deliberate difference, see `docs/control-plane.md`).
    ///
    /// - Throws: ``TygerControlPlaneError`` `notFound` naming the soft deletion.
    func refuseSoftDeleted(id: String) async throws(TygerControlPlaneError) {
        if try await repo({ try await self.repository.get(id: id, softDeleted: true) }) != nil {
            throw TygerControlPlaneError(
                code: .notFound,
                message: "The buffer is soft-deleted: restore it ('tyger buffer restore \(id)') to read or write it"
            )
        }
    }
}
