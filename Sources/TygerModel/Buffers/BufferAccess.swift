/// The response of `POST /buffers/{id}/access`: `{"uri":"<absolute URL>"}`.
///
/// For an ephemeral buffer of a run on this server, asked over the server's unix socket (so the caller is on the
/// same machine), the response also carries `localPath`: the run's named pipe, which the caller may open directly
/// instead of going through the relay. Upstream has no such field; other clients ignore it.
public struct BufferAccess: Codable, Sendable, Hashable {
    /// The signed access URL.
    public var uri: String
    /// The named pipe of an ephemeral buffer on this machine, when the caller may use it directly.
    public var localPath: String?

    /// Creates an access value.
    ///
    /// - Parameters:
    ///   - uri: The signed access URL.
    ///   - localPath: The named pipe of an ephemeral buffer on this machine, if any.
    public init(uri: String, localPath: String? = nil) {
        self.uri = uri
        self.localPath = localPath
    }
}
