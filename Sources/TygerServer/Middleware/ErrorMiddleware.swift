import HTTPTypes
public import Hummingbird
import Logging

/// Turns every error into a response, in the plane's dialect (Azure XML under `/containers`, JSON elsewhere).
///
/// Errors get their status, code and message from ``APIError/init(mapping:unrouted:)``, the one mapping of domain
/// errors; the router's "no route" error becomes 400 `InvalidRoute`, as upstream answers unknown paths. 5xx answers
/// carry no details (they may hold paths or a store's words): the cause goes to the server's log, at error level, with
/// the request's ID.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    /// Creates the middleware.
    public init() {}

    public func handle(
        _ request: Request,
        context: AppRequestContext,
        next: @concurrent (Request, AppRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = APIError(mapping: error, unrouted: context.endpointPath == "NotFound")
            if apiError.status.kind == .serverError {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return apiError.response(
                dialect: APIError.dialect(forPath: request.uri.path),
                includeBody: request.method != .head
            )
        }
    }
}
