/// The `GET /metadata` document: what this server offers and where its planes are.
public struct ServiceMetadata: Codable, Sendable, Equatable {
    /// The only API version (`api-version=1.0`).
    public static let apiVersion = "1.0"

    /// Supported API versions: `["1.0"]`.
    public var apiVersions: [String]
    /// Capabilities, upstream's names: `["LocalBuffers"]`.
    public var capabilities: [String]
    /// Data-plane base URLs (every listener), as upstream's `storageEndpoints`.
    public var storageEndpoints: [String]
    /// The data plane's base URL for the listener this request came in on.
    public var dataPlaneEndpoint: String
    /// The control plane's base URL for the listener this request came in on.
    public var controlPlaneEndpoint: String

    /// Creates the document.
    public init(
        apiVersions: [String] = [apiVersion], capabilities: [String] = ["LocalBuffers"], storageEndpoints: [String],
        dataPlaneEndpoint: String, controlPlaneEndpoint: String
    ) {
        self.apiVersions = apiVersions
        self.capabilities = capabilities
        self.storageEndpoints = storageEndpoints
        self.dataPlaneEndpoint = dataPlaneEndpoint
        self.controlPlaneEndpoint = controlPlaneEndpoint
    }
}
