public import Foundation
import TygerModel

/// Persistence for buffers.
///
/// Implementations must make every method atomic (one transaction each) and safe to call concurrently. Handlers
/// and ``BufferManager`` use only this protocol, so adding an implementation (for example PostgreSQL) needs no
/// change elsewhere. ``InMemoryBufferRepository`` and ``SQLiteBufferRepository`` pass the same test suite.
///
/// Visibility follows upstream (`Database/Repository.cs`): ``get(id:softDeleted:)``, ``list(_:limit:after:)`` and
/// ``update(id:softDeleted:ifMatch:expiresAt:tags:)`` filter only on the soft-deleted flag, so an expired buffer
/// stays visible until the expiry service moves it; state changes, bulk operations and ``count(_:)`` treat
/// `expiresAt <= now` as nonexistent (callers pass `now` via ``BufferFilter/liveAt`` or the `now:` argument).
public protocol BufferRepository: Sendable {
    /// Inserts a new buffer.
    ///
    /// - Parameter record: The buffer to insert.
    /// - Throws: ``TygerControlPlaneError`` with code ``TygerControlPlaneError/Code/databaseFailure`` on storage
    ///   errors, including a duplicate ID.
    func create(_ record: BufferRecord) async throws

    /// Fetches a buffer in the given soft-deleted state.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - softDeleted: The state the buffer must be in.
    /// - Returns: The buffer, or `nil` when no buffer with that ID is in that state.
    /// - Throws: On storage errors.
    func get(id: String, softDeleted: Bool) async throws -> BufferRecord?

    /// Lists buffers ordered by `createdAt` descending, then `id` descending.
    ///
    /// - Parameters:
    ///   - filter: Which buffers to include.
    ///   - limit: The maximum number of buffers to return.
    ///   - after: Return only buffers strictly after this position in the ordering.
    /// - Returns: Up to `limit` buffers.
    /// - Throws: On storage errors.
    func list(_ filter: BufferFilter, limit: Int, after: BufferCursor?) async throws -> [BufferRecord]

    /// Counts the buffers matching a filter.
    ///
    /// - Parameter filter: Which buffers to count.
    /// - Returns: The count.
    /// - Throws: On storage errors.
    func count(_ filter: BufferFilter) async throws -> Int

    /// Replaces a buffer's tags and optionally its expiry, if its ETag matches.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - softDeleted: The state the buffer must be in.
    ///   - ifMatch: The expected current ETag, or `nil` for no precondition.
    ///   - expiresAt: The new expiry, or `nil` to keep the current one.
    ///   - tags: The new, complete tag set.
    /// - Returns: The outcome.
    /// - Throws: On storage errors.
    func update(
        id: String,
        softDeleted: Bool,
        ifMatch: String?,
        expiresAt: Date?,
        tags: [String: String]
    ) async throws -> BufferChangeOutcome

    /// Moves one unexpired buffer between the active and soft-deleted states.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - change: The required current state and the new state.
    ///   - now: Buffers with `expiresAt <= now` count as nonexistent.
    /// - Returns: ``BufferChangeOutcome/notFound`` when missing or expired, ``BufferChangeOutcome/wrongState(_:)``
    ///   when the buffer is not in `change.from`, else ``BufferChangeOutcome/changed(_:)``.
    /// - Throws: On storage errors.
    func changeState(id: String, _ change: BufferStateChange, now: Date) async throws -> BufferChangeOutcome

    /// Moves every unexpired buffer that matches the tag filters and is in `change.from` to the new state.
    ///
    /// - Parameters:
    ///   - filter: The tag filters; its `softDeleted` and `liveAt` are ignored (`change.from` and `now` apply).
    ///   - change: The required current state and the new state.
    ///   - now: Buffers with `expiresAt <= now` are skipped.
    /// - Returns: The number of buffers changed.
    /// - Throws: On storage errors.
    func changeStates(matching filter: BufferFilter, _ change: BufferStateChange, now: Date) async throws -> Int

    /// Soft-deletes active buffers whose `expiresAt <= now`, setting their new expiry.
    ///
    /// - Parameters:
    ///   - now: The current time.
    ///   - newExpiresAt: The expiry of the soft-deleted buffers.
    ///   - limit: The maximum number of buffers to change.
    /// - Returns: The IDs of the buffers changed.
    /// - Throws: On storage errors.
    func softDeleteExpired(now: Date, newExpiresAt: Date, limit: Int) async throws -> [String]

    /// The soft-deleted buffers whose `expiresAt <= now`: due to be purged (their containers first, then their
    /// records through ``purge(ids:now:)``).
    ///
    /// - Parameters:
    ///   - now: The current time.
    ///   - limit: The maximum number of IDs.
    /// - Returns: IDs, earliest expiry first (then by ID).
    /// - Throws: On storage errors.
    func purgeable(now: Date, limit: Int) async throws -> [String]

    /// Deletes the records of those of `ids` that are still soft-deleted with `expiresAt <= now`, and their writer
    /// leases. A buffer restored or given a later expiry meanwhile is kept. (Restoring needs an unexpired buffer, so
    /// once due, a buffer stays due.)
    ///
    /// - Returns: The IDs deleted, sorted.
    /// - Throws: On storage errors.
    func purge(ids: [String], now: Date) async throws -> [String]

    /// The writer lease of a buffer, if a writer ever took one.
    ///
    /// - Parameter bufferId: The buffer (container) ID; it need not have a buffer record.
    /// - Returns: The lease, or `nil`.
    /// - Throws: On storage errors.
    func writerLease(bufferId: String) async throws -> BufferWriterLease?

    /// Changes a buffer's writer lease atomically, by the rules of ``BufferWriterLeaseChange/apply(to:bufferId:leaseId:now:)``.
    ///
    /// - Parameters:
    ///   - bufferId: The buffer (container) ID.
    ///   - leaseId: The writer's lease ID.
    ///   - change: What the writer asks.
    ///   - now: The current time (a `writing` lease with `expiresAt <= now` is abandoned).
    /// - Returns: The outcome.
    /// - Throws: On storage errors.
    func changeWriterLease(
        bufferId: String,
        leaseId: String,
        _ change: BufferWriterLeaseChange,
        now: Date
    ) async throws -> BufferWriterLeaseOutcome
}

/// Which buffers a list, count or bulk operation covers.
public struct BufferFilter: Sendable, Hashable {
    /// Tags that must all be present with these values (`tag[k]=v`, AND).
    public var tags: [String: String]
    /// Tags that exclude a buffer if any is present with its value (`excludeTag[k]=v`, OR).
    public var excludeTags: [String: String]
    /// The soft-deleted state to include, or `nil` for both.
    public var softDeleted: Bool?
    /// When set, buffers with `expiresAt <= liveAt` are excluded.
    public var liveAt: Date?

    /// Creates a filter.
    ///
    /// - Parameters:
    ///   - tags: Tags that must all match.
    ///   - excludeTags: Tags of which any excludes a buffer.
    ///   - softDeleted: The soft-deleted state, or `nil` for both.
    ///   - liveAt: Exclude buffers expired at this time, or `nil`.
    public init(
        tags: [String: String] = [:],
        excludeTags: [String: String] = [:],
        softDeleted: Bool? = false,
        liveAt: Date? = nil
    ) {
        self.tags = tags
        self.excludeTags = excludeTags
        self.softDeleted = softDeleted
        self.liveAt = liveAt
    }

    /// Whether a record passes the filter.
    public func matches(_ record: BufferRecord) -> Bool {
        if let softDeleted, record.isSoftDeleted != softDeleted { return false }
        if let liveAt, record.isExpired(at: liveAt) { return false }
        for (k, v) in tags where record.tags[k] != v { return false }
        for (k, v) in excludeTags where record.tags[k] == v { return false }
        return true
    }
}

/// A position in the `createdAt desc, id desc` ordering of buffers.
public struct BufferCursor: Sendable, Hashable {
    /// The `createdAt` of the last buffer returned, in microseconds since the Unix epoch.
    public var createdAtMicros: Int64
    /// The ID of the last buffer returned.
    public var id: String

    /// Creates a cursor.
    ///
    /// - Parameters:
    ///   - createdAtMicros: The `createdAt` of the last buffer returned, in microseconds.
    ///   - id: The ID of the last buffer returned.
    public init(createdAtMicros: Int64, id: String) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    /// The cursor positioned just after `record`.
    public init(after record: BufferRecord) {
        self.init(createdAtMicros: RFC3339.micros(record.createdAt), id: record.id)
    }

    /// Whether `record` comes strictly after this cursor in the ordering.
    public func precedes(_ record: BufferRecord) -> Bool {
        let c = RFC3339.micros(record.createdAt)
        return c < createdAtMicros || (c == createdAtMicros && record.id < id)
    }
}

/// A transition between the active and soft-deleted states.
public struct BufferStateChange: Sendable, Hashable {
    /// Whether the buffer must currently be soft-deleted.
    public var fromSoftDeleted: Bool
    /// Whether the buffer is soft-deleted afterwards.
    public var toSoftDeleted: Bool
    /// The expiry afterwards (`nil` = never).
    public var expiresAt: Date?

    /// Creates a transition.
    ///
    /// - Parameters:
    ///   - fromSoftDeleted: Whether the buffer must currently be soft-deleted.
    ///   - toSoftDeleted: Whether the buffer is soft-deleted afterwards.
    ///   - expiresAt: The expiry afterwards.
    public init(fromSoftDeleted: Bool, toSoftDeleted: Bool, expiresAt: Date?) {
        self.fromSoftDeleted = fromSoftDeleted
        self.toSoftDeleted = toSoftDeleted
        self.expiresAt = expiresAt.map(RFC3339.normalize)
    }

    /// Applies the transition to a record that is in the required state.
    func apply(to record: inout BufferRecord) {
        record.isSoftDeleted = toSoftDeleted
        record.expiresAt = expiresAt
    }
}

/// The result of a conditional single-buffer change.
public enum BufferChangeOutcome: Sendable, Hashable {
    /// The change was applied; the record is the new state.
    case changed(BufferRecord)
    /// No such buffer (in the required state, or unexpired, depending on the operation).
    case notFound
    /// The buffer exists but is in the wrong soft-deleted state; the record is its current state.
    case wrongState(BufferRecord)
    /// The `If-Match` ETag did not match; the record is the current state.
    case eTagMismatch(BufferRecord)
}
