import HTTPTypes
public import Hummingbird
public import Logging

/// Outermost middleware: sets the `Request-Id` header on every response and writes one access-log line per request.
///
/// The line is a constant message with the data in metadata (`http.method`, `http.path` without the query, which
/// may hold a signature, `http.status`, `error.code`, `caller`, `duration_ms`). Its level is configurable; the
/// executable uses `.info`.
public struct RequestLoggingMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    private let level: Logger.Level

    /// A middleware logging at `level`.
    public init(level: Logger.Level = .debug) { self.level = level }

    public func handle(
        _ request: Request,
        context: AppRequestContext,
        next: @concurrent (Request, AppRequestContext) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // The error middleware turns everything into responses; this only sees errors thrown around it.
            let apiError = APIError(mapping: error)
            response = apiError.response(
                dialect: APIError.dialect(forPath: request.uri.path),
                includeBody: request.method != .head
            )
        }
        response.headers[.requestID] = context.requestID
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.log(
            level: level,
            "request",
            metadata: [
                "http.method": "\(request.method)",
                "http.path": "\(request.uri.path)",
                "http.status": "\(response.status.code)",
                "error.code": response.headers[.xMsErrorCode].map { .string($0) } ?? "",
                "caller": "\(context.caller)",
                "duration_ms": "\((ms * 10).rounded() / 10)",
            ]
        )
        return response
    }
}
