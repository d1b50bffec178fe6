import Foundation
import HTTPTypes
import Hummingbird
import NIOHTTP1
import TygerControlPlane
import TygerModel
import TygerRunEngine
import TygerStorage

extension APIError {
    /// The HTTP answer for any error thrown while handling a request: the one place where domain errors get a
    /// status, a code and a message (house style rule 10).
    ///
    /// | Error | Answer |
    /// |---|---|
    /// | `APIError` | itself |
    /// | `TygerControlPlaneError` | 400 `InvalidInput` / `BadRequest`, 404 `NotFound`, 412 `PreconditionFailed`, 500 |
    /// | `TygerRunEngineError` | 400 `InvalidInput` / `AlreadyCalled`, 404 `NotFound`, 409 `Conflict`, 412, 500 |
    /// | `TygerModelError`, `DecodingError` | 400 `InvalidInput` |
    /// | `BlobStoreError` | the Azure codes of the data plane (`BlobAlreadyExists`, …), 507 `InsufficientStorage`, 500 |
    /// | `HTTPParserError` (a malformed body, such as bad chunked encoding) | 400 `InvalidInput` |
    /// | `SignedURLError` | 403 `AuthenticationFailed` / `AuthorizationPermissionMismatch` |
    /// | `TygerServerError` | 400 `InvalidInput` for `.invalidArgument`, else 500 |
    /// | Hummingbird `HTTPResponseError` | its status, a code named after it; no route: 400 `InvalidRoute` |
    /// | anything else | 500 `InternalError` (details only in the debug log) |
    ///
    /// - Parameters:
    ///   - error: The error.
    ///   - unrouted: Whether the router found no route for the request (its 404 becomes `InvalidRoute`).
    public init(mapping error: any Error, unrouted: Bool = false) {
        switch error {
        case let error as APIError:
            self = error
        case let error as TygerControlPlaneError:
            self = Self.controlPlane(error)
        case let error as TygerRunEngineError:
            self = Self.runEngine(error)
        case let error as TygerModelError:
            self = .invalidInput(error.message)
        case let error as DecodingError:
            self = .invalidInput("Error deserializing input: " + YAMLSpecs.describe(error))
        case let error as BlobStoreError:
            self = Self.blobStore(error)
        case let error as SignedURLError:
            self =
                error.code == .permissionMismatch
                ? .authorizationPermissionMismatch(error.message) : .authenticationFailed(error.message)
        case let error as HTTPParserError:
            self = .invalidInput("The request is not valid HTTP/1.1: \(error).")
        case let error as TygerServerError:
            self = error.code == .invalidArgument ? .invalidInput(error.message) : .internalFailure
        case let error as any HTTPResponseError:
            if error.status == .notFound && unrouted {
                self = .invalidRoute
                return
            }
            let message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
            let code = error.status.reasonPhrase.split(separator: " ").joined()
            self = APIError(error.status, code: code.isEmpty ? "Error" : code, message: message)
        default:
            self = .internalFailure
        }
    }

    private static func controlPlane(_ error: TygerControlPlaneError) -> APIError {
        switch error.code {
        case .notFound: APIError(.notFound, code: ErrorCode.notFound.rawValue, message: error.message)
        case .preconditionFailed:
            APIError(.preconditionFailed, code: ErrorCode.preconditionFailed.rawValue, message: error.message)
        case .badRequest: APIError(.badRequest, code: ErrorCode.badRequest.rawValue, message: error.message)
        case .apiVersionUnspecified: .apiVersionUnspecified
        case .unsupportedAPIVersion: .unsupportedApiVersion
        case .storageFailure, .databaseFailure: .internalFailure
        case .unavailable: APIError(.serviceUnavailable, code: "ServiceUnavailable", message: error.message)
        default: .invalidInput(error.message)
        }
    }

    private static func runEngine(_ error: TygerRunEngineError) -> APIError {
        switch error.code {
        case .invalidInput: .invalidInput(error.message)
        case .notFound: .notFound
        case .alreadyCalled: APIError(.badRequest, code: "AlreadyCalled", message: error.message)
        case .conflict: APIError(.conflict, code: "Conflict", message: error.message)
        case .preconditionFailed:
            APIError(.preconditionFailed, code: ErrorCode.preconditionFailed.rawValue, message: error.message)
        case .unavailable: APIError(.serviceUnavailable, code: "ServiceUnavailable", message: error.message)
        default: .internalFailure
        }
    }

    private static func blobStore(_ error: BlobStoreError) -> APIError {
        // Corrupt blobs and I/O failures become a generic 500: their messages hold paths.
        switch error.code {
        case .alreadyExists: .blobAlreadyExists
        case .containerNotFound: .containerNotFound
        case .containerAlreadyExists: .containerAlreadyExists
        case .invalidName: .invalidBlobName
        case .leaseHeld: .leaseAlreadyPresent
        case .noSpace: .insufficientStorage
        case .blockNotFound:
            APIError(
                .badRequest,
                code: "InvalidBlockList",
                message: "The specified block list is invalid: a block it names is no longer staged."
            )
        default: .internalFailure
        }
    }
}
