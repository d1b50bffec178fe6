public import Hummingbird
import Logging
import NIOCore
public import TygerModel

extension TygerControlPlaneError: HTTPResponseError {
    /// The HTTP status of this error.
    public var status: HTTPResponse.Status {
        switch code {
        case .notFound: .notFound
        case .preconditionFailed: .preconditionFailed
        case .storageFailure, .databaseFailure: .internalServerError
        default: .badRequest
        }
    }

    /// The error-envelope code of this error.
    public var errorCode: ErrorCode {
        switch code {
        case .notFound: .notFound
        case .preconditionFailed: .preconditionFailed
        case .badRequest: .badRequest
        case .apiVersionUnspecified: .apiVersionUnspecified
        case .unsupportedAPIVersion: .unsupportedApiVersion
        default: .invalidInput
        }
    }

    /// Renders the error as `{"error":{"code","message"[,"apiVersions"]}}`; 500s get an empty body, as upstream,
    /// so internals do not leak.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if status == .internalServerError {
            context.logger.debug("Control-plane internal error", metadata: ["error": "\(self)"])
            return Response(status: status)
        }
        let apiVersions = (code == .apiVersionUnspecified || code == .unsupportedAPIVersion) ? APIVersion.supported : nil
        return try JSONResponse.make(
            status, ErrorResponse(code: errorCode, message: message, apiVersions: apiVersions))
    }
}

/// Builds JSON responses with our encoder.
enum JSONResponse {
    static func make(
        _ status: HTTPResponse.Status, _ value: some Encodable, headers extra: HTTPFields = [:]
    ) throws -> Response {
        let data = try TygerJSON.encode(value)
        var headers = extra
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
