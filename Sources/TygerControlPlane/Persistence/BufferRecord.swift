public import Foundation
public import TygerModel

/// The stored state of one buffer, as every ``BufferRepository`` keeps it.
///
/// Timestamps are kept at microsecond precision (see ``RFC3339/normalize(_:)``), so a record compares equal after a round trip
/// through any repository and continuation tokens are exact.
public struct BufferRecord: Sendable, Hashable {
    /// The 26-character buffer ID.
    public var id: String
    /// The storage location (`local`).
    public var location: String
    /// When the buffer was created.
    public var createdAt: Date
    /// Whether the buffer is soft-deleted.
    public var isSoftDeleted: Bool
    /// When the buffer expires, if ever.
    public var expiresAt: Date?
    /// The buffer's tags.
    public var tags: [String: String]

    /// Creates a record; timestamps are truncated to microseconds.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - location: The storage location.
    ///   - createdAt: The creation time.
    ///   - isSoftDeleted: Whether the buffer is soft-deleted.
    ///   - expiresAt: The expiry time, if any.
    ///   - tags: The tags.
    public init(
        id: String,
        location: String,
        createdAt: Date,
        isSoftDeleted: Bool = false,
        expiresAt: Date? = nil,
        tags: [String: String] = [:]
    ) {
        self.id = id
        self.location = location
        self.createdAt = RFC3339.normalize(createdAt)
        self.isSoftDeleted = isSoftDeleted
        self.expiresAt = expiresAt.map(RFC3339.normalize)
        self.tags = tags
    }

    /// The ETag of the current state.
    public var eTag: String {
        BufferETag.compute(id: id, isSoftDeleted: isSoftDeleted, expiresAt: expiresAt, tags: tags)
    }

    /// Whether the buffer counts as gone at `now` for the operations that honour expiry (single and bulk
    /// delete/restore/purge, count, access): `expiresAt <= now`.
    public func isExpired(at now: Date) -> Bool {
        guard let expiresAt else { return false }
        return expiresAt <= now
    }

    /// The wire representation, with the ETag filled in.
    public var wire: Buffer {
        Buffer(
            id: id,
            location: location,
            createdAt: createdAt,
            isSoftDeleted: isSoftDeleted,
            expiresAt: expiresAt,
            tags: tags,
            eTag: eTag
        )
    }
}
