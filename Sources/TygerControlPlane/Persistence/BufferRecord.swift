public import Foundation
public import TygerModel

/// The stored state of one buffer, as every ``BufferRepository`` keeps it.
///
/// Timestamps are kept at microsecond precision (see ``Timestamp``), so a record compares equal after a round trip
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
        self.createdAt = Timestamp.normalize(createdAt)
        self.isSoftDeleted = isSoftDeleted
        self.expiresAt = expiresAt.map(Timestamp.normalize)
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

/// Conversions between `Date` and the microsecond integers that repositories store.
public enum Timestamp {
    /// Microseconds since the Unix epoch, rounded to the nearest microsecond.
    ///
    /// - Parameter date: The date to convert.
    /// - Returns: The microsecond count.
    public static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The date of a microsecond count since the Unix epoch.
    ///
    /// - Parameter micros: The microsecond count.
    /// - Returns: The date.
    public static func date(micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    /// Rounds a date to the nearest microsecond.
    ///
    /// - Parameter date: The date to round.
    /// - Returns: A date that survives a round trip through ``micros(_:)`` and ``date(micros:)`` unchanged.
    public static func normalize(_ date: Date) -> Date {
        Self.date(micros: micros(date))
    }

    /// Adds a `Duration` to a date.
    ///
    /// - Parameters:
    ///   - duration: The duration to add.
    ///   - date: The start date.
    /// - Returns: `date + duration`, normalized to microseconds.
    public static func adding(_ duration: Duration, to date: Date) -> Date {
        let (seconds, attoseconds) = duration.components
        return normalize(date.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18))
    }
}
