public import HTTPTypes
import TygerModel

/// A failure of one request as the client sees it: an HTTP status, a stable error code and a human message.
///
/// The error middleware renders it in the plane's dialect: the data plane (`/containers/...`) answers like Azure
/// Blob Storage (`x-ms-error-code` header and an XML `<Error>` body), everything else with Tyger's JSON envelope
/// `{"error":{"code":"…","message":"…"}}`. Domain errors of other modules become `APIError`s in one place,
/// ``init(mapping:unrouted:)`` (house style rule 10).
public struct APIError: Error, Sendable, Equatable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The stable error code (`BlobNotFound`, `InvalidRoute`, ...).
    public var code: String
    /// A human message; never holds secrets or internal paths.
    public var message: String
    /// Extra response headers (`Content-Range` on a 416, `WWW-Authenticate` on a 401).
    public var headers: HTTPFields
    /// For API-version errors: the versions the server supports, added to the JSON envelope.
    public var apiVersions: [String]?
    /// Whether the JSON dialect writes the envelope; upstream answers some errors (`PUT /runs/{id}`: 404, 412)
    /// with an empty body.
    public var hasBody = true

    /// Creates an error.
    public init(
        _ status: HTTPResponse.Status,
        code: String,
        message: String,
        headers: HTTPFields = [:],
        apiVersions: [String]? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.apiVersions = apiVersions
    }
}

extension APIError {
    // MARK: Common

    /// 400 `InvalidRoute`: the path (or the method on it) is not served.
    public static let invalidRoute = APIError(
        .badRequest,
        code: "InvalidRoute",
        message: "The request path was not recognized."
    )

    /// 400 `InvalidInput`: a body or query parameter failed validation.
    public static func invalidInput(_ message: String) -> APIError {
        APIError(.badRequest, code: "InvalidInput", message: message)
    }

    /// 404 `NotFound` "The resource was not found", upstream's answer for a missing buffer, codespec or run.
    public static let notFound = APIError(.notFound, code: "NotFound", message: "The resource was not found")

    /// 401 `Unauthorized`: a TCP request without a valid bearer token.
    public static func unauthorized(_ message: String) -> APIError {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer"
        return APIError(.unauthorized, code: "Unauthorized", message: message, headers: headers)
    }

    /// 400 `ApiVersionUnspecified`.
    public static let apiVersionUnspecified = APIError(
        .badRequest,
        code: "ApiVersionUnspecified",
        message: "Unspecified API version",
        apiVersions: APIVersion.supported
    )

    /// 400 `UnsupportedApiVersion`.
    public static let unsupportedApiVersion = APIError(
        .badRequest,
        code: "UnsupportedApiVersion",
        message: "Unsupported API version",
        apiVersions: APIVersion.supported
    )

    /// 500 `InternalError`, for errors that must not leak their details.
    public static let internalFailure = APIError(
        .internalServerError,
        code: "InternalError",
        message: "The server encountered an internal error."
    )

    // MARK: Data plane (Azure Blob error codes)

    /// 404 `ContainerNotFound`.
    public static let containerNotFound = APIError(
        .notFound,
        code: "ContainerNotFound",
        message: "The specified container does not exist."
    )
    /// 409 `ContainerAlreadyExists`.
    public static let containerAlreadyExists = APIError(
        .conflict,
        code: "ContainerAlreadyExists",
        message: "The specified container already exists."
    )
    /// 404 `BlobNotFound`.
    public static let blobNotFound = APIError(
        .notFound,
        code: "BlobNotFound",
        message: "The specified blob does not exist."
    )
    /// 409 `BlobAlreadyExists`: blobs are write-once.
    public static let blobAlreadyExists = APIError(
        .conflict,
        code: "BlobAlreadyExists",
        message: "The specified blob already exists. Blobs of a buffer are write-once."
    )
    /// 409 `LeaseAlreadyPresent`: another writer holds the buffer's writer lease.
    public static let leaseAlreadyPresent = APIError(
        .conflict,
        code: "LeaseAlreadyPresent",
        message: "Another writer holds the buffer's writer lease."
    )
    /// 409 `BufferAlreadyWritten`: a writer with a lease found `.bufferstart` of another writer (write-once).
    public static let bufferAlreadyWritten = APIError(
        .conflict,
        code: "BufferAlreadyWritten",
        message: "The buffer already holds data from another writer. Buffers are write-once."
    )
    /// 412 `LeaseIdMissing`: a put without a lease ID while a writer holds the buffer's lease.
    public static let leaseIdMissing = APIError(
        .preconditionFailed,
        code: "LeaseIdMissing",
        message: "A writer holds the buffer's writer lease and no lease ID (x-tyger-lease-id) was given."
    )
    /// 412 `LeaseLost`: the writer's lease ran out (no renewal in time) or ended; the buffer is abandoned.
    public static let leaseLost = APIError(
        .preconditionFailed,
        code: "LeaseLost",
        message: "The writer's lease on this buffer has expired or ended: the buffer is abandoned."
    )
    /// 400 `Md5Mismatch`.
    public static func md5Mismatch(header: String) -> APIError {
        APIError(
            .badRequest,
            code: "Md5Mismatch",
            message:
                "The MD5 value specified in the request (\(header)) did not match the MD5 value calculated by the server."
        )
    }
    /// 400 `Crc32cMismatch`: the native format's `x-ms-meta-crc32c` does not match the body.
    public static let crc32cMismatch = APIError(
        .badRequest,
        code: "Crc32cMismatch",
        message: "The CRC32C value in x-ms-meta-crc32c did not match the CRC32C calculated by the server."
    )
    /// 400 `InvalidMd5`: an MD5 header that is not the base64 of 16 bytes.
    public static func invalidMd5(header: String) -> APIError {
        APIError(.badRequest, code: "InvalidMd5", message: "The \(header) header is not the base64 of an MD5 digest.")
    }
    /// 416 `InvalidRange`.
    public static func invalidRange(blobLength: Int) -> APIError {
        var headers = HTTPFields()
        headers[.contentRange] = "bytes */\(blobLength)"
        return APIError(
            .rangeNotSatisfiable,
            code: "InvalidRange",
            message: "The range specified is invalid for the current size of the resource.",
            headers: headers
        )
    }
    /// 400 `InvalidHeaderValue`.
    public static func invalidHeaderValue(_ header: String, _ detail: String) -> APIError {
        APIError(
            .badRequest,
            code: "InvalidHeaderValue",
            message: "The value for header \(header) is invalid: \(detail)"
        )
    }
    /// 400 `InvalidMetadata`.
    public static func invalidMetadata(_ detail: String) -> APIError {
        APIError(.badRequest, code: "InvalidMetadata", message: "The metadata specified is invalid: \(detail)")
    }
    /// 400 `InvalidContainerName`.
    public static let invalidContainerName = APIError(
        .badRequest,
        code: "InvalidContainerName",
        message: "The container name must be 3 to 63 letters and digits ([a-zA-Z0-9])."
    )
    /// 507 `InsufficientStorage`: the server's disk is full; the upload was dropped.
    public static let insufficientStorage = APIError(
        .init(code: 507, reasonPhrase: "Insufficient Storage"),
        code: "InsufficientStorage",
        message: "The server's disk is full: the blob was not stored and the buffer is marked failed."
    )
    /// 400 `InvalidBlobName`.
    public static let invalidBlobName = APIError(
        .badRequest,
        code: "InvalidBlobName",
        message:
            "The blob name must be '/'-separated segments of [A-Za-z0-9._-] (at most 255 bytes each, 1024 in all), "
            + "without empty, '.' or '..' segments or encoded slashes."
    )
    /// 412 `ConditionNotMet`.
    public static let conditionNotMet = APIError(
        .preconditionFailed,
        code: "ConditionNotMet",
        message: "The condition specified using HTTP conditional header(s) is not met."
    )
    /// 413 `RequestBodyTooLarge`.
    ///
    /// - Parameters:
    ///   - limit: The limit in bytes.
    ///   - what: What the limit is of: one blob, one block, a block list.
    public static func requestBodyTooLarge(limit: Int, of what: String = "one blob") -> APIError {
        APIError(
            .contentTooLarge,
            code: "RequestBodyTooLarge",
            message: "The request body is larger than the \(limit)-byte limit of \(what)."
        )
    }
    /// 400 `InvalidBlockList`: a block list names a block that is not staged for the blob (or is no block ID).
    public static func invalidBlockList(_ blockId: String) -> APIError {
        let shown = blockId.utf8.count <= 100 ? blockId : String(blockId.prefix(100)) + "…"
        return APIError(
            .badRequest,
            code: "InvalidBlockList",
            message: "The specified block list is invalid: no block '\(shown)' is staged for this blob."
        )
    }
    /// 400 `UnsupportedQueryParameter`, for Azure operations this data plane does not implement.
    public static func unsupportedOperation(_ detail: String) -> APIError {
        APIError(.badRequest, code: "UnsupportedQueryParameter", message: detail)
    }
    /// 403 `AuthenticationFailed`.
    public static func authenticationFailed(_ detail: String) -> APIError {
        APIError(
            .forbidden,
            code: "AuthenticationFailed",
            message:
                "Server failed to authenticate the request. Make sure the access URL is correct and not expired. \(detail)"
        )
    }
    /// 403 `AuthorizationPermissionMismatch`.
    public static func authorizationPermissionMismatch(_ detail: String) -> APIError {
        APIError(
            .forbidden,
            code: "AuthorizationPermissionMismatch",
            message: "This request is not authorized to perform this operation using this permission. \(detail)"
        )
    }
}
