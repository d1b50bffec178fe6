/// The body of `PUT /runs/{id}` (`tyger run set`): `{"id"?, "tags"?}`.
///
/// Not strict, as upstream's `RunUpdate`: unknown properties (notably the `eTag` upstream's CLI sends) are ignored.
/// `tags` replaces the whole tag set; `nil` (absent or `null`) clears it.
public struct RunUpdate: Codable, Sendable, Hashable {
    /// The run ID; when present it must equal the ID in the URL.
    public var id: Int64?
    /// The new tag set, or `nil` to clear all tags.
    public var tags: [String: String]?

    /// Creates an update.
    ///
    /// - Parameters:
    ///   - id: The run ID, or `nil`.
    ///   - tags: The new tag set, or `nil` to clear all tags.
    public init(id: Int64? = nil, tags: [String: String]? = nil) {
        self.id = id
        self.tags = tags
    }
}
