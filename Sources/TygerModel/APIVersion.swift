/// The control-plane API versions and the query parameter that selects one.
///
/// Every route of the versioned group (`/buffers/**`, `/codespecs/**`, `/runs/**`) requires
/// `?api-version=1.0`.
public enum APIVersion {
    /// The name of the query parameter that carries the version: `api-version`.
    public static let queryParameterName = "api-version"
    /// Version `1.0`, the only one upstream Tyger defines.
    public static let v1_0 = "1.0"
    /// Every supported version, as returned in `apiVersions` of error bodies and of `/metadata`.
    public static let supported: [String] = [v1_0]
}
