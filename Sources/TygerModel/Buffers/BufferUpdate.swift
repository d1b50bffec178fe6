public import Foundation

/// The body of `PUT /buffers/{id}`: `{"id"?, "expiresAt"?, "tags"?}`.
///
/// Not strict, as upstream: unknown properties (notably the `eTag` the Go CLI's `buffer set` sends) are ignored.
/// `tags` replaces the whole tag set; `nil` (absent or `null`) clears it. `expiresAt`, when present, replaces the
/// expiry; `nil` leaves it unchanged.
public struct BufferUpdate: Sendable, Hashable {
    /// The buffer ID; when non-empty it must equal the ID in the URL.
    public var id: String?
    /// The new expiry time, or `nil` to keep the current one.
    public var expiresAt: Date?
    /// The new tag set, or `nil` to clear all tags.
    public var tags: [String: String]?

    /// Creates an update.
    ///
    /// - Parameters:
    ///   - id: The buffer ID, or `nil`.
    ///   - expiresAt: The new expiry time, or `nil` to keep the current one.
    ///   - tags: The new tag set, or `nil` to clear all tags.
    public init(id: String? = nil, expiresAt: Date? = nil, tags: [String: String]? = nil) {
        self.id = id
        self.expiresAt = expiresAt
        self.tags = tags
    }
}

extension BufferUpdate: Codable {
    enum CodingKeys: String, CodingKey {
        case id, expiresAt, tags
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decodeIfPresent(String.self, forKey: .id)
        self.expiresAt = try c.decodeTimestampIfPresent(forKey: .expiresAt)
        self.tags = try c.decodeIfPresent([String: String].self, forKey: .tags)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(id, forKey: .id)
        try c.encodeIfPresent(expiresAt, forKey: .expiresAt)
        try c.encodeIfPresent(tags, forKey: .tags)
    }
}
