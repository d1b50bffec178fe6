public import TygerStorage
import HTTPTypes

extension BlobStoreError: HTTPErrorConvertible {
    /// The data-plane answer for a store failure. Corrupt blobs and I/O failures become a generic 500: their
    /// messages hold paths, which clients must not see (the error middleware logs them).
    public var apiError: APIError {
        switch code {
        case .alreadyExists: .blobAlreadyExists
        case .containerNotFound: .containerNotFound
        case .containerAlreadyExists: .containerAlreadyExists
        case .invalidName: .invalidBlobName
        case .leaseHeld:
            APIError(.conflict, code: "LeaseAlreadyPresent", message: "Another writer holds the buffer's writer lease.")
        default: .internalError
        }
    }
}
