/// The response of `GET /metadata`.
///
/// `rbacEnabled` appears only when `true`; `nil` properties are omitted.
public struct ServiceMetadata: Sendable, Hashable {
    /// Whether role-based access control is on.
    public var rbacEnabled: Bool
    /// The OAuth authority.
    public var authority: String?
    /// The OAuth audience.
    public var audience: String?
    /// The API application URI.
    public var apiAppUri: String?
    /// The API application ID.
    public var apiAppId: String?
    /// The CLI application URI.
    public var cliAppUri: String?
    /// The CLI application ID.
    public var cliAppId: String?
    /// The server's capabilities, in upstream's order (`Gpu`, `NodePools`, `DistributedRuns`, `EphemeralBuffers`,
    /// `Docker`, `Kubernetes`, `LocalBuffers`).
    public var capabilities: [String]?
    /// The supported API versions.
    public var apiVersions: [String]?
    /// The storage endpoints (data-plane base URLs, one per listener).
    public var storageEndpoints: [String]?
    /// Addition: the data plane's base URL for the listener the request came in on.
    public var dataPlaneEndpoint: String?
    /// Addition: the control plane's base URL for the listener the request came in on.
    public var controlPlaneEndpoint: String?
    /// Addition: what runs the codespecs (`process`, `docker`) and the engine behind it.
    public var executor: ExecutorMetadata?
    /// Addition: the data planes in processes of their own (`--data-plane NAME=URL`), and whether each answered its
    /// health check just now.
    public var dataPlanes: [DataPlaneMetadata]?

    /// Upstream's capability names in upstream's order.
    public static let capabilityOrder = [
        "Gpu", "NodePools", "DistributedRuns", "EphemeralBuffers", "Docker", "Kubernetes", "LocalBuffers",
    ]

    /// Creates a metadata value.
    ///
    /// - Parameters:
    ///   - rbacEnabled: Whether role-based access control is on.
    ///   - authority: The OAuth authority.
    ///   - audience: The OAuth audience.
    ///   - apiAppUri: The API application URI.
    ///   - apiAppId: The API application ID.
    ///   - cliAppUri: The CLI application URI.
    ///   - cliAppId: The CLI application ID.
    ///   - capabilities: The capabilities.
    ///   - apiVersions: The supported API versions; defaults to ``APIVersion/supported``.
    ///   - storageEndpoints: The storage endpoints.
    ///   - dataPlaneEndpoint: The data plane's base URL for the caller's listener.
    ///   - controlPlaneEndpoint: The control plane's base URL for the caller's listener.
    public init(
        rbacEnabled: Bool = false,
        authority: String? = nil,
        audience: String? = nil,
        apiAppUri: String? = nil,
        apiAppId: String? = nil,
        cliAppUri: String? = nil,
        cliAppId: String? = nil,
        capabilities: [String]? = nil,
        apiVersions: [String]? = APIVersion.supported,
        storageEndpoints: [String]? = nil,
        dataPlaneEndpoint: String? = nil,
        controlPlaneEndpoint: String? = nil
    ) {
        self.dataPlaneEndpoint = dataPlaneEndpoint
        self.controlPlaneEndpoint = controlPlaneEndpoint
        self.rbacEnabled = rbacEnabled
        self.authority = authority
        self.audience = audience
        self.apiAppUri = apiAppUri
        self.apiAppId = apiAppId
        self.cliAppUri = cliAppUri
        self.cliAppId = cliAppId
        self.capabilities = capabilities
        self.apiVersions = apiVersions
        self.storageEndpoints = storageEndpoints
    }
}

extension ServiceMetadata: Codable {
    enum CodingKeys: String, CodingKey {
        case rbacEnabled, authority, audience, apiAppUri, apiAppId, cliAppUri, cliAppId, capabilities, apiVersions
        case storageEndpoints, dataPlaneEndpoint, controlPlaneEndpoint, executor, dataPlanes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.rbacEnabled = try c.decodeIfPresent(Bool.self, forKey: .rbacEnabled) ?? false
        self.authority = try c.decodeIfPresent(String.self, forKey: .authority)
        self.audience = try c.decodeIfPresent(String.self, forKey: .audience)
        self.apiAppUri = try c.decodeIfPresent(String.self, forKey: .apiAppUri)
        self.apiAppId = try c.decodeIfPresent(String.self, forKey: .apiAppId)
        self.cliAppUri = try c.decodeIfPresent(String.self, forKey: .cliAppUri)
        self.cliAppId = try c.decodeIfPresent(String.self, forKey: .cliAppId)
        self.capabilities = try c.decodeIfPresent([String].self, forKey: .capabilities)
        self.apiVersions = try c.decodeIfPresent([String].self, forKey: .apiVersions)
        self.storageEndpoints = try c.decodeIfPresent([String].self, forKey: .storageEndpoints)
        self.dataPlaneEndpoint = try c.decodeIfPresent(String.self, forKey: .dataPlaneEndpoint)
        self.controlPlaneEndpoint = try c.decodeIfPresent(String.self, forKey: .controlPlaneEndpoint)
        self.executor = try c.decodeIfPresent(ExecutorMetadata.self, forKey: .executor)
        self.dataPlanes = try c.decodeIfPresent([DataPlaneMetadata].self, forKey: .dataPlanes)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if rbacEnabled { try c.encode(true, forKey: .rbacEnabled) }
        try c.encodeIfPresent(authority, forKey: .authority)
        try c.encodeIfPresent(audience, forKey: .audience)
        try c.encodeIfPresent(apiAppUri, forKey: .apiAppUri)
        try c.encodeIfPresent(apiAppId, forKey: .apiAppId)
        try c.encodeIfPresent(cliAppUri, forKey: .cliAppUri)
        try c.encodeIfPresent(cliAppId, forKey: .cliAppId)
        try c.encodeIfPresent(capabilities, forKey: .capabilities)
        try c.encodeIfPresent(apiVersions, forKey: .apiVersions)
        try c.encodeIfPresent(storageEndpoints, forKey: .storageEndpoints)
        try c.encodeIfPresent(dataPlaneEndpoint, forKey: .dataPlaneEndpoint)
        try c.encodeIfPresent(controlPlaneEndpoint, forKey: .controlPlaneEndpoint)
        try c.encodeIfPresent(executor, forKey: .executor)
        try c.encodeIfPresent(dataPlanes, forKey: .dataPlanes)
    }
}

/// A data plane of another process, as `GET /metadata` reports it (an addition).
public struct DataPlaneMetadata: Codable, Sendable, Hashable {
    /// The name buffers give as their location.
    public var name: String
    /// Its base URL, as the control plane reaches it.
    public var endpoint: String
    /// Whether it answered its health check within a few seconds.
    public var healthy: Bool

    public init(name: String, endpoint: String, healthy: Bool) {
        self.name = name
        self.endpoint = endpoint
        self.healthy = healthy
    }
}

/// What runs a server's codespecs (`GET /metadata`'s `executor`, an addition).
public struct ExecutorMetadata: Codable, Sendable, Hashable {
    /// `process` (host processes) or `docker` (containers through the Docker Engine API).
    public var kind: String
    /// The container engine and its version (`Podman Engine 4.3.1`), for `docker`.
    public var engine: String?

    public init(kind: String, engine: String? = nil) {
        self.kind = kind
        self.engine = engine
    }
}
