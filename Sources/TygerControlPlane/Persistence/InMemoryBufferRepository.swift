public import Foundation
import TygerModel

/// A ``BufferRepository`` that keeps buffers in memory, for tests and ephemeral servers.
///
/// Listing sorts all matching buffers, so it costs O(n log n) per page.
public actor InMemoryBufferRepository: BufferRepository {
    private var buffers: [String: BufferRecord] = [:]
    private var leases: [String: BufferWriterLease] = [:]

    /// Creates an empty repository.
    public init() {}

    public func create(_ record: BufferRecord) async throws {
        guard buffers[record.id] == nil else {
            throw TygerControlPlaneError(code: .databaseFailure, message: "Duplicate buffer ID '\(record.id)'")
        }
        buffers[record.id] = record
    }

    public func get(id: String, softDeleted: Bool) async throws -> BufferRecord? {
        guard let record = buffers[id], record.isSoftDeleted == softDeleted else { return nil }
        return record
    }

    public func list(_ filter: BufferFilter, limit: Int, after: BufferCursor?) async throws -> [BufferRecord] {
        let matching = buffers.values.filter { filter.matches($0) && (after?.precedes($0) ?? true) }
        return Array(matching.sorted(by: Self.ordering).prefix(max(0, limit)))
    }

    public func count(_ filter: BufferFilter) async throws -> Int {
        buffers.values.count(where: { filter.matches($0) })
    }

    public func update(
        id: String,
        softDeleted: Bool,
        ifMatch: String?,
        expiresAt: Date?,
        tags: [String: String]
    ) async throws -> BufferChangeOutcome {
        guard var record = buffers[id], record.isSoftDeleted == softDeleted else { return .notFound }
        if let ifMatch, ifMatch != record.eTag { return .eTagMismatch(record) }
        record.tags = tags
        if let expiresAt { record.expiresAt = RFC3339.normalize(expiresAt) }
        buffers[id] = record
        return .changed(record)
    }

    public func changeState(id: String, _ change: BufferStateChange, now: Date) async throws -> BufferChangeOutcome {
        guard var record = buffers[id], !record.isExpired(at: now) else { return .notFound }
        guard record.isSoftDeleted == change.fromSoftDeleted else { return .wrongState(record) }
        change.apply(to: &record)
        buffers[id] = record
        return .changed(record)
    }

    public func changeStates(matching filter: BufferFilter, _ change: BufferStateChange, now: Date) async throws -> Int
    {
        var f = filter
        f.softDeleted = change.fromSoftDeleted
        f.liveAt = now
        var changed = 0
        for (id, var record) in buffers where f.matches(record) {
            change.apply(to: &record)
            buffers[id] = record
            changed += 1
        }
        return changed
    }

    public func softDeleteExpired(now: Date, newExpiresAt: Date, limit: Int) async throws -> [String] {
        let ids = buffers.values.filter { !$0.isSoftDeleted && $0.isExpired(at: now) }.map(\.id).sorted().prefix(limit)
        for id in ids {
            buffers[id]?.isSoftDeleted = true
            buffers[id]?.expiresAt = RFC3339.normalize(newExpiresAt)
        }
        return Array(ids)
    }

    public func purgeable(now: Date, limit: Int) async throws -> [String] {
        let due = buffers.values.filter { $0.isSoftDeleted && $0.isExpired(at: now) }
        return Array(
            due.sorted { ($0.expiresAt ?? .distantPast, $0.id) < ($1.expiresAt ?? .distantPast, $1.id) }
                .map(\.id).prefix(limit)
        )
    }

    public func purge(ids: [String], now: Date) async throws -> [String] {
        let deleted = ids.filter { buffers[$0].map { $0.isSoftDeleted && $0.isExpired(at: now) } ?? false }
        for id in deleted {
            buffers[id] = nil
            leases[id] = nil
        }
        return deleted.sorted()
    }

    public func writerLease(bufferId: String) async throws -> BufferWriterLease? { leases[bufferId] }

    public func changeWriterLease(
        bufferId: String,
        leaseId: String,
        _ change: BufferWriterLeaseChange,
        now: Date
    ) async throws -> BufferWriterLeaseOutcome {
        let (store, outcome) = change.apply(to: leases[bufferId], bufferId: bufferId, leaseId: leaseId, now: now)
        if let store { leases[bufferId] = store }
        return outcome
    }

    /// `createdAt` descending, then `id` descending.
    static func ordering(_ a: BufferRecord, _ b: BufferRecord) -> Bool {
        a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id > b.id
    }
}
