public import Hummingbird
public import TygerModel

/// Requires a supported `api-version` query parameter on every route it wraps (upstream's versioned group).
///
/// - Missing or empty: 400 `ApiVersionUnspecified` "Unspecified API version", with `"apiVersions":["1.0"]`.
/// - Unknown: 400 `UnsupportedApiVersion` "Unsupported API version" with `apiVersions`.
/// - Paths under ``legacyPathPrefix`` (upstream's `/v1/`) imply `1.0`: a missing or empty value is accepted.
///
/// ```swift
/// let buffers = router.group("buffers").add(middleware: APIVersionMiddleware())
/// BuffersController(manager: manager).addRoutes(to: buffers)
/// ```
public struct APIVersionMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The accepted versions.
    public let supported: [String]
    /// The path prefix that implies version `1.0`, or `nil`.
    public let legacyPathPrefix: String?

    /// Creates the middleware.
    ///
    /// - Parameters:
    ///   - supported: The accepted versions; defaults to ``APIVersion/supported``.
    ///   - legacyPathPrefix: A path prefix under which a missing version means `1.0`; defaults to `/v1/`.
    public init(supported: [String] = APIVersion.supported, legacyPathPrefix: String? = "/v1/") {
        self.supported = supported
        self.legacyPathPrefix = legacyPathPrefix
    }

    // `@concurrent` matches Hummingbird's requirement under NonisolatedNonsendingByDefault.
    @concurrent
    public func handle(
        _ request: Request,
        context: Context,
        next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        let version = QueryParameters(request.uri.query).string(APIVersion.queryParameterName) ?? ""
        if version.isEmpty {
            if let legacyPathPrefix, request.uri.path.hasPrefix(legacyPathPrefix) {
                return try await next(request, context)
            }
            throw APIError.apiVersionUnspecified
        }
        guard supported.contains(version) else {
            throw APIError.unsupportedApiVersion
        }
        return try await next(request, context)
    }
}
