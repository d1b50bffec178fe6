/// The response of `POST /buffers/{id}/access`: `{"uri":"<absolute URL>"}`.
public struct BufferAccess: Codable, Sendable, Hashable {
    /// The signed access URL.
    public var uri: String

    /// Creates an access value.
    ///
    /// - Parameter uri: The signed access URL.
    public init(uri: String) {
        self.uri = uri
    }
}
