public import Foundation

/// A buffer as the REST API returns it and as `POST /buffers` accepts it.
///
/// JSON (camelCase, `nil` and default values omitted as upstream):
/// ```json
/// {"id":"yf4sx2aqzitepjhmxjhanomn5e","location":"local","createdAt":"2024-01-25T18:20:49.951262Z",
///  "expiresAt":"2024-01-26T18:20:49Z","tags":{"mykey1":"myvalue1"},"eTag":"1234567890"}
/// ```
/// `isSoftDeleted` appears only when `true`; `tags` only when non-empty.
///
/// Decoding is strict like upstream: a property outside the schema fails with
/// `Object contains unrecognized properties 'x'.` The Go CLI's zero values (`"id":""`,
/// `"createdAt":"0001-01-01T00:00:00Z"`, `"eTag":""`) are accepted; the server ignores `id`, `createdAt`,
/// `isSoftDeleted` and `eTag` on create.
public struct Buffer: Sendable, Hashable {
    /// The 26-character buffer ID.
    public var id: String
    /// The storage location (`local` for local installations).
    public var location: String?
    /// When the buffer was created.
    public var createdAt: Date?
    /// Whether the buffer is soft-deleted.
    public var isSoftDeleted: Bool
    /// When the buffer expires (an active buffer is soft-deleted then; a soft-deleted one is purged).
    public var expiresAt: Date?
    /// The buffer's tags.
    public var tags: [String: String]?
    /// The ETag of the buffer's current state.
    public var eTag: String?

    /// Creates a buffer value.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - location: The storage location.
    ///   - createdAt: The creation time.
    ///   - isSoftDeleted: Whether the buffer is soft-deleted.
    ///   - expiresAt: The expiry time.
    ///   - tags: The tags.
    ///   - eTag: The ETag.
    public init(
        id: String = "",
        location: String? = nil,
        createdAt: Date? = nil,
        isSoftDeleted: Bool = false,
        expiresAt: Date? = nil,
        tags: [String: String]? = nil,
        eTag: String? = nil
    ) {
        self.id = id
        self.location = location
        self.createdAt = createdAt
        self.isSoftDeleted = isSoftDeleted
        self.expiresAt = expiresAt
        self.tags = tags
        self.eTag = eTag
    }
}

extension Buffer: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, location, createdAt, isSoftDeleted, expiresAt, tags, eTag
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.stringValue)))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        self.location = try c.decodeIfPresent(String.self, forKey: .location)
        self.createdAt = try c.decodeTimestampIfPresent(forKey: .createdAt)
        self.isSoftDeleted = try c.decodeIfPresent(Bool.self, forKey: .isSoftDeleted) ?? false
        self.expiresAt = try c.decodeTimestampIfPresent(forKey: .expiresAt)
        self.tags = try c.decodeIfPresent([String: String].self, forKey: .tags)
        self.eTag = try c.decodeIfPresent(String.self, forKey: .eTag)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(location, forKey: .location)
        try c.encodeIfPresent(createdAt, forKey: .createdAt)
        if isSoftDeleted { try c.encode(true, forKey: .isSoftDeleted) }
        try c.encodeIfPresent(expiresAt, forKey: .expiresAt)
        try c.encodeIfPresent(tags?.isEmpty == false ? tags : nil, forKey: .tags)
        try c.encodeIfPresent(eTag, forKey: .eTag)
    }
}
