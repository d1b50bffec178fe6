import HTTPTypes
public import TygerControlPlane
import TygerModel

extension TygerControlPlaneError: HTTPErrorConvertible {
    /// The control plane's own status, code and message (`400 InvalidInput "Buffer location can only be 'local'."`,
    /// `412 PreconditionFailed "ETag does not match"`, …); 500s without details.
    ///
    /// Without this the error middleware saw only a Hummingbird `HTTPResponseError` and answered with the status's
    /// reason phrase (`BadRequest: Bad Request`), losing the code and the message.
    public var apiError: APIError {
        switch code {
        case .apiVersionUnspecified: return .apiVersionUnspecified
        case .unsupportedAPIVersion: return .unsupportedApiVersion
        default:
            if status == .internalServerError { return .internalError }
            return APIError(status, code: errorCode.rawValue, message: message)
        }
    }
}
