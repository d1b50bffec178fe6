/// The JSON error envelope of every control-plane error: `{"error":{"code","message","apiVersions"?}}`.
public struct ErrorResponse: Codable, Sendable, Hashable {
    /// The error details.
    public var error: ErrorInfo

    /// Creates an envelope.
    ///
    /// - Parameter error: The error details.
    public init(error: ErrorInfo) {
        self.error = error
    }

    /// Creates an envelope from its parts.
    ///
    /// - Parameters:
    ///   - code: The error code, for example ``ErrorCode/notFound``.
    ///   - message: The human-readable message.
    ///   - apiVersions: The supported API versions; set only on api-version errors.
    public init(code: ErrorCode, message: String, apiVersions: [String]? = nil) {
        self.error = ErrorInfo(code: code.rawValue, message: message, apiVersions: apiVersions)
    }
}

/// The body of ``ErrorResponse``.
public struct ErrorInfo: Codable, Sendable, Hashable {
    /// A machine-readable code such as `NotFound` or `InvalidInput`.
    public var code: String
    /// A human-readable message.
    public var message: String
    /// The supported API versions; omitted from JSON when `nil`.
    public var apiVersions: [String]?

    /// Creates error details.
    ///
    /// - Parameters:
    ///   - code: A machine-readable code.
    ///   - message: A human-readable message.
    ///   - apiVersions: The supported API versions, or `nil`.
    public init(code: String, message: String, apiVersions: [String]? = nil) {
        self.code = code
        self.message = message
        self.apiVersions = apiVersions
    }
}

/// The error codes of upstream Tyger's error envelope.
public struct ErrorCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// `NotFound` (404, message ``notFoundMessage``).
    public static let notFound = ErrorCode(rawValue: "NotFound")
    /// Upstream's message of every 404 for a missing buffer, codespec or run.
    public static let notFoundMessage = "The resource was not found"
    /// `BadRequest` (400).
    public static let badRequest = ErrorCode(rawValue: "BadRequest")
    /// `InvalidInput` (400): a body or parameter failed validation.
    public static let invalidInput = ErrorCode(rawValue: "InvalidInput")
    /// `InvalidRoute` (400): the path was not recognized.
    public static let invalidRoute = ErrorCode(rawValue: "InvalidRoute")
    /// `PreconditionFailed` (412).
    public static let preconditionFailed = ErrorCode(rawValue: "PreconditionFailed")
    /// `Forbidden` (403).
    public static let forbidden = ErrorCode(rawValue: "Forbidden")
    /// `ApiVersionUnspecified` (400): the `api-version` query parameter is missing or empty.
    public static let apiVersionUnspecified = ErrorCode(rawValue: "ApiVersionUnspecified")
    /// `UnsupportedApiVersion` (400): the `api-version` value is not supported.
    public static let unsupportedApiVersion = ErrorCode(rawValue: "UnsupportedApiVersion")
}
