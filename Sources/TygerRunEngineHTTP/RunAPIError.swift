public import Hummingbird
import TygerCore
public import HTTPTypes
import NIOCore
import TygerRunEngine
import TygerModel

/// An API error rendered as upstream's envelope `{"error":{"code":"...","message":"..."}}`.
public struct RunAPIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// Upstream's error code (`InvalidInput`, `NotFound`, ...).
    public var code: String
    /// The message for users.
    public var message: String

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var headers: HTTPFields { [.contentType: "application/json; charset=utf-8"] }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = "{\"error\":{\"code\":\(TextEncoding.jsonQuoted(code)),\"message\":\(TextEncoding.jsonQuoted(message))}}"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    /// Maps engine errors to statuses; anything else becomes a 500 without internals.
    static func from(_ error: any Error) -> any Error {
        switch error {
        case let e as RunAPIError: return e
        case let e as HTTPError: return e
        case let e as TygerRunEngineError:
            switch e.code {
            case .invalidInput: return RunAPIError(.badRequest, code: "InvalidInput", message: e.message)
            case .notFound: return RunAPIError(.notFound, code: "NotFound", message: "The resource was not found")
            case .alreadyCalled: return RunAPIError(.badRequest, code: "AlreadyCalled", message: e.message)
            case .conflict: return RunAPIError(.conflict, code: "Conflict", message: e.message)
            default: return RunAPIError(.internalServerError, code: "InternalServerError", message: "An internal error occurred")
            }
        case let e as TygerModelError:
            return RunAPIError(.badRequest, code: "InvalidInput", message: e.message)
        case let e as DecodingError:
            return RunAPIError(.badRequest, code: "InvalidInput", message: "Error deserializing input: \(YAMLSpecs.describe(e))")
        default:
            return RunAPIError(.internalServerError, code: "InternalServerError", message: "An internal error occurred")
        }
    }

    static func badRequest(_ message: String) -> RunAPIError { RunAPIError(.badRequest, code: "BadRequest", message: message) }
}



