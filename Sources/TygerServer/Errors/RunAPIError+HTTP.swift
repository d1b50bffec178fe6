public import TygerRunEngineHTTP

extension RunAPIError: HTTPErrorConvertible {
    /// The runs controllers' errors (`InvalidInput` with the decoding or validation message, `NotFound`, ...) as
    /// they are: without this the error middleware saw only an `HTTPResponseError` and answered with the status's
    /// reason phrase (`BadRequest: Bad Request`), losing the message.
    public var apiError: APIError { APIError(status, code: code, message: message) }
}
