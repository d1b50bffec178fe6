/// One page of `GET /buffers`: `{"items":[...],"nextLink":"/buffers?...&_ct=..."}`.
///
/// `nextLink` is omitted on the last page.
public struct BufferPage: Codable, Sendable, Hashable {
    /// The buffers of this page, newest first.
    public var items: [Buffer]
    /// The relative link to the next page, or `nil` on the last page.
    public var nextLink: String?

    /// Creates a page.
    ///
    /// - Parameters:
    ///   - items: The buffers of this page.
    ///   - nextLink: The relative link to the next page, or `nil`.
    public init(items: [Buffer], nextLink: String? = nil) {
        self.items = items
        self.nextLink = nextLink
    }
}
