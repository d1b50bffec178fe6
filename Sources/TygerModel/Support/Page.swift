/// One page of a list route (`GET /buffers`, `/runs`, `/codespecs`): `{"items":[...],"nextLink":"/runs?...&_ct=..."}`.
///
/// `nextLink` is omitted on the last page.
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    /// The items of this page, in the route's order (newest first for buffers and runs).
    public var items: [Item]
    /// The relative link to the next page, or `nil` on the last page.
    public var nextLink: String?

    /// Creates a page.
    ///
    /// - Parameters:
    ///   - items: The items of this page.
    ///   - nextLink: The relative link to the next page, or `nil`.
    public init(items: [Item], nextLink: String? = nil) {
        self.items = items
        self.nextLink = nextLink
    }
}

extension Page: Equatable where Item: Equatable {}
extension Page: Hashable where Item: Hashable {}
