import HTTPTypes
public import Hummingbird
import Logging

/// Establishes `context.caller`, and refuses unauthenticated TCP requests with 401.
///
/// - `/healthcheck`, `/metadata` and the OpenAPI document are anonymous on every listener (as upstream: clients
///   read `/metadata` before they log in).
/// - Requests under a signed path prefix (the data plane's `/containers/`, and those of
///   `ControlPlaneRoutes.signedPathPrefixes`) that carry a signature (`sig`) pass through: those routes check the
///   signature themselves and answer 403 when it is bad.
/// - The unix socket is trusted: its callers are `.unixSocket`.
/// - Everything else needs `Authorization: Bearer <token>` with a token from the `TokenStore`; otherwise 401
///   `Unauthorized` (JSON envelope, `WWW-Authenticate: Bearer`).
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    private let tokens: any TokenStore
    private let anonymousPaths: Set<String>
    private let signedPathPrefixes: [String]
    private let connections: ConnectionGuard?

    /// The exact paths that need no authentication by default.
    public static let defaultAnonymousPaths: Set<String> = [
        "/healthcheck", "/metadata", SystemController.openAPIDocumentPath,
    ]

    /// A middleware checking bearer tokens against `tokens`.
    ///
    /// - Parameters:
    ///   - tokens: Where tokens are looked up.
    ///   - anonymousPaths: Exact paths that need no authentication.
    ///   - signedPathPrefixes: Path prefixes whose routes check a signed URL (`sig`) themselves.
    ///   - connections: Told when a request on a connection authenticates (a valid token, or a signed route that
    ///     established a caller), so the connection stops counting against its source's unauthenticated budget.
    public init(
        tokens: any TokenStore,
        anonymousPaths: Set<String> = defaultAnonymousPaths,
        signedPathPrefixes: [String] = ["/containers/"],
        connections: ConnectionGuard? = nil
    ) {
        self.tokens = tokens
        self.anonymousPaths = anonymousPaths
        self.signedPathPrefixes = signedPathPrefixes
        self.connections = connections
    }

    public func handle(
        _ request: Request,
        context: AppRequestContext,
        next: @concurrent (Request, AppRequestContext) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        if context.transport == .unixSocket {
            context.caller = .unixSocket
            return try await next(request, context)
        }
        if anonymousPaths.contains(path) {
            return try await next(request, context)
        }
        if signedPathPrefixes.contains(where: { path.hasPrefix($0) })
            && QueryParameters(request.uri.query).string("sig") != nil
        {
            // The data plane sets the caller as soon as the signature checks out, and from then on the connection
            // counts as authenticated: also when the answer is an error (a 404 for a blob not written yet), and
            // while a long upload is still coming in. Left unauthenticated, such a connection would be closed in the
            // middle of a request when a busy client (many transfers at once) opens more connections.
            if let connections {
                let connection = context.connection
                context.whenIdentified { connections.markAuthenticated(connection) }
            }
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized(
                "Authentication is required: send 'Authorization: Bearer <token>' or use a signed access URL."
            )
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthorized("The Authorization header must be 'Bearer <token>'.")
        }
        let token = parts[1].trimmingPrefix(while: { $0 == " " })
        guard let record = try await tokens.authenticate(String(token)) else {
            throw APIError.unauthorized("The bearer token is not valid (unknown or revoked).")
        }
        context.caller = .token(id: record.id, name: record.name)
        connections?.markAuthenticated(context.connection)
        return try await next(request, context)
    }
}
