import Foundation
import Synchronization
import TygerControlPlane
import TygerCore
import TygerModel
import TygerStorage

/// The writer leases of HTTP writers, kept by the control plane (``BufferManager``) and enforced by the data plane.
///
/// A writer that sends `x-tyger-lease-id` takes the lease with its `.bufferstart` PUT, renews it
/// (`PUT …/.bufferstart?comp=lease`, `x-tyger-lease-action: renew`) and ends it with `.bufferend`. While a lease is
/// live the server also holds the buffer directory's `flock` lease, so local readers (`file://`, the embedded fast
/// path) see a live writer, and a dead one once the lease runs out (or the server dies). Writers without a lease ID
/// keep upstream's behaviour, except that they cannot put blobs while another writer holds a lease.
///
/// Leases live in the repository, so a restarted server knows them: a lease whose expiry passed means the buffer is
/// abandoned, and a live one is taken up again when its writer renews it.
final class DataPlaneWriterLeases: Sendable {
    let manager: BufferManager
    let buffers: BufferStorage
    private let held = Mutex<[String: Held]>([:])

    /// A lease granted by this server process, with the directory lock it holds for it.
    private struct Held: Sendable {
        let leaseId: String
        var expiresAt: Date
        let lock: any WriterLease
    }

    init(manager: BufferManager, buffers: BufferStorage) {
        self.manager = manager
        self.buffers = buffers
    }

    private func now() -> Date { manager.clock.now() }

    /// The live lease of a container, dropping one that ran out.
    private func live(_ container: String) async -> Held? {
        let now = now()
        let (current, expired) = held.withLock { held -> (Held?, Held?) in
            guard let h = held[container] else { return (nil, nil) }
            if h.expiresAt > now { return (h, nil) }
            held[container] = nil
            return (nil, h)
        }
        await expired?.lock.release()
        return current
    }

    /// Takes the lease for a `.bufferstart` PUT that carries `leaseId` (or extends it, for a retried PUT).
    ///
    /// - Throws: `APIError` `.leaseAlreadyPresent` (another writer, local or HTTP), `.bufferAlreadyWritten` (a write
    ///   already ended), `TygerControlPlaneError` `notFound` (soft-deleted buffer).
    func acquire(_ container: String, leaseId: String) async throws {
        if let current = await live(container) {
            guard current.leaseId == leaseId else { throw APIError.leaseAlreadyPresent }
            try await renew(container, leaseId: leaseId)
            return
        }
        let lock = try await buffers.store(for: container).acquireWriterLease()
        let outcome: BufferWriterLeaseOutcome
        do {
            outcome = try await manager.acquireWriterLease(id: container, leaseId: leaseId)
        } catch {
            await lock.release()
            throw error
        }
        do {
            let lease = try outcome.grantedLease(acquiring: true, at: now())
            install(container, leaseId: leaseId, expiresAt: lease.expiresAt, lock: lock)
        } catch {
            await lock.release()
            throw error
        }
    }

    /// Takes the lease of an abandoned write for a writer that continues it (`x-tyger-lease-action: resume`), or
    /// extends it for the same lease ID.
    ///
    /// - Throws: `APIError` `.leaseAlreadyPresent` (a writer, local or HTTP, holds it), `.bufferAlreadyWritten` (the
    ///   write ended: `.bufferend` is stored), `TygerControlPlaneError` `notFound` (soft-deleted buffer).
    func resume(_ container: String, leaseId: String) async throws {
        if let current = await live(container) {
            guard current.leaseId == leaseId else { throw APIError.leaseAlreadyPresent }
            try await renew(container, leaseId: leaseId)
            return
        }
        let store = buffers.store(for: container)
        let lock: any WriterLease
        do {
            lock = try await store.acquireWriterLease()
        } catch let error as BlobStoreError where error.code == .leaseHeld {
            throw APIError.leaseAlreadyPresent
        }
        do {
            // A writer without a lease (upstream's) may have ended the buffer: its `.bufferend` is the word.
            if try await store.head(BufferBlobNames.end) != nil { throw APIError.bufferAlreadyWritten }
            let lease = try await manager.resumeWriterLease(id: container, leaseId: leaseId)
                .grantedLease(acquiring: true, at: now())
            install(container, leaseId: leaseId, expiresAt: lease.expiresAt, lock: lock)
        } catch {
            await lock.release()
            throw error
        }
    }

    /// The ID of the container's live lease, if any: held by this process, or in the repository (a restart).
    func liveLeaseId(_ container: String) async throws -> String? {
        if let current = await live(container) { return current.leaseId }
        guard let lease = try await manager.writerLease(id: container) else { return nil }
        return lease.state(at: now()) == .writing ? lease.leaseId : nil
    }

    /// Checks a blob PUT other than `.bufferstart`.
    ///
    /// - Throws: `APIError` `.leaseIdMissing` (no lease ID while a writer holds the lease), `.leaseAlreadyPresent`
    ///   (another writer's lease), `.leaseLost` (this lease ran out or ended).
    func verify(_ container: String, leaseId: String?) async throws {
        guard let leaseId else {
            if await live(container) != nil { throw APIError.leaseIdMissing }
            return
        }
        if let current = await live(container) {
            guard current.leaseId == leaseId else { throw APIError.leaseAlreadyPresent }
            return
        }
        // Not held by this process: the server restarted while the writer was writing, or the lease ran out.
        try await renew(container, leaseId: leaseId)
    }

    /// Whether `leaseId` ended the write (`complete` or `failed`): a retried `.bufferend` of that writer, whose
    /// first attempt landed, is then answered `BlobAlreadyExists` as any retried put.
    func ended(_ container: String, by leaseId: String) async throws -> Bool {
        guard let lease = try await manager.writerLease(id: container), lease.leaseId == leaseId else { return false }
        return lease.storedState == .complete || lease.storedState == .failed
    }

    /// Extends the lease (`x-tyger-lease-action: renew`).
    ///
    /// - Throws: `APIError` `.leaseLost` when it is not this writer's live lease, `.leaseAlreadyPresent` when a
    ///   local writer holds the directory lock (after a server restart).
    func renew(_ container: String, leaseId: String) async throws {
        let lease = try await manager.renewWriterLease(id: container, leaseId: leaseId)
            .grantedLease(acquiring: false, at: now())
        let extended = held.withLock { held -> Bool in
            guard held[container]?.leaseId == leaseId else { return false }
            held[container]?.expiresAt = lease.expiresAt
            return true
        }
        if extended { return }
        // Taken up again after a server restart: hold the directory lock again.
        let lock = try await buffers.store(for: container).acquireWriterLease()
        install(container, leaseId: leaseId, expiresAt: lease.expiresAt, lock: lock)
    }

    /// Ends the write once `.bufferend` is stored (`complete` or `failed`), or lets go of the lease without it
    /// (`abandoned`, `x-tyger-lease-action: release`). A lease that is not this writer's is left alone.
    func end(_ container: String, leaseId: String, state: BufferWriteState) async throws {
        try await manager.endWrite(id: container, leaseId: leaseId, state: state)
        let released = held.withLock { held -> Held? in
            guard let h = held[container], h.leaseId == leaseId else { return nil }
            held[container] = nil
            return h
        }
        await released?.lock.release()
    }

    /// Where the container's write stands, for readers (`x-tyger-buffer-state` on a 404); `nil` without a lease.
    func state(_ container: String) async throws -> BufferWriteState? {
        if await live(container) != nil { return .writing }
        return try await manager.writeState(id: container)
    }

    private func install(_ container: String, leaseId: String, expiresAt: Date, lock: any WriterLease) {
        let replaced = held.withLock { held -> Held? in
            let old = held[container]
            held[container] = Held(leaseId: leaseId, expiresAt: expiresAt, lock: lock)
            return old
        }
        if let replaced, replaced.leaseId != leaseId {
            Task { await replaced.lock.release() }
        }
        if replaced?.leaseId == leaseId { return }  // its watcher is running
        // Drop the directory lock when the lease runs out, so local readers see a dead writer.
        Task { [self] in
            while true {
                let remaining = held.withLock { $0[container] }.flatMap { h -> TimeInterval? in
                    h.leaseId == leaseId ? h.expiresAt.timeIntervalSince(now()) : nil
                }
                guard let remaining else { return }
                if remaining <= 0 {
                    _ = await live(container)
                    return
                }
                try? await Task.sleep(for: .milliseconds(Int(min(remaining, 60) * 1000) + 10))
            }
        }
    }
}

extension BufferWriterLeaseOutcome {
    /// The granted lease, or the refusal as the API answers it, for the data plane's and the S3 route's writers.
    ///
    /// - Parameter acquiring: Whether the outcome is of a take (`acquire`) rather than a renewal.
    /// - Throws: `APIError` `.leaseAlreadyPresent` (another writer's live lease); for a take,
    ///   `.bufferAlreadyWritten` (a write already ended); for a renewal, `.leaseLost` (it ran out or ended).
    func grantedLease(acquiring: Bool, at now: Date) throws -> BufferWriterLease {
        switch self {
        case .granted(let lease): return lease
        case .refused(let lease) where lease.state(at: now) == .writing: throw APIError.leaseAlreadyPresent
        case .refused: throw acquiring ? APIError.bufferAlreadyWritten : APIError.leaseLost
        case .none: throw acquiring ? APIError.internalFailure : APIError.leaseLost
        }
    }
}
