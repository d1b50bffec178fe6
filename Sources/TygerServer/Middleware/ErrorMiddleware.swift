public import Hummingbird
import HTTPTypes
import Logging

/// Turns every error into a response, in the plane's dialect (Azure XML under `/containers`, JSON elsewhere).
///
/// - `HTTPErrorConvertible` errors (our `APIError`, domain errors of lower modules) render as themselves.
/// - The router's "no route" error becomes 400 `InvalidRoute`, as upstream answers unknown paths.
/// - Hummingbird's own `HTTPResponseError`s (bad JSON bodies in control-plane routes, ...) keep their status with a
///   code named after it (`BadRequest`, `NotFound`, ...).
/// - Anything else is a 500 `InternalError` without details; the error is logged at debug.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    /// Creates the middleware.
    public init() {}

    public func handle(
        _ request: Request, context: AppRequestContext, next: @concurrent (Request, AppRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, context: context)
            if apiError.status.kind == .serverError {
                context.logger.debug("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return apiError.response(
                dialect: APIError.dialect(forPath: request.uri.path), includeBody: request.method != .head)
        }
    }

    static func apiError(for error: any Error, context: AppRequestContext) -> APIError {
        if let convertible = error as? any HTTPErrorConvertible { return convertible.apiError }
        if let httpError = error as? any HTTPResponseError {
            if httpError.status == .notFound && context.endpointPath == "NotFound" { return .invalidRoute }
            let message = (httpError as? HTTPError)?.body ?? httpError.status.reasonPhrase
            let code = httpError.status.reasonPhrase.split(separator: " ").joined()
            return APIError(httpError.status, code: code.isEmpty ? "Error" : code, message: message)
        }
        return .internalError
    }
}
