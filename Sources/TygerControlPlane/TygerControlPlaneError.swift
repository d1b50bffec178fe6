import TygerModel

/// An error of the buffers control plane.
///
/// The server maps each ``Code`` to one HTTP status and error-envelope code (`APIError+Mapping.swift` of
/// `TygerServer`):
/// ``Code/invalidInput`` → 400 `InvalidInput`, ``Code/badRequest`` → 400 `BadRequest`, ``Code/notFound`` → 404
/// `NotFound`, ``Code/preconditionFailed`` → 412 `PreconditionFailed`, ``Code/apiVersionUnspecified`` and
/// ``Code/unsupportedAPIVersion`` → 400 with `apiVersions`, and ``Code/storageFailure`` /
/// ``Code/databaseFailure`` → 500 with an empty body (details only in ``cause`` and the debug log).
public struct TygerControlPlaneError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalidInput, badRequest, notFound, preconditionFailed
            case apiVersionUnspecified, unsupportedAPIVersion
            case storageFailure, databaseFailure, unavailable
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A body or query parameter failed validation (400 `InvalidInput`).
        public static let invalidInput = Code(.invalidInput)
        /// The request is not acceptable for another reason (400 `BadRequest`).
        public static let badRequest = Code(.badRequest)
        /// The buffer does not exist, or is not visible in the requested state (404 `NotFound`).
        public static let notFound = Code(.notFound)
        /// An `If-Match` ETag or a state precondition failed (412 `PreconditionFailed`).
        public static let preconditionFailed = Code(.preconditionFailed)
        /// The `api-version` query parameter is missing (400 `ApiVersionUnspecified`).
        public static let apiVersionUnspecified = Code(.apiVersionUnspecified)
        /// The `api-version` value is not supported (400 `UnsupportedApiVersion`).
        public static let unsupportedAPIVersion = Code(.unsupportedAPIVersion)
        /// The buffer storage provider failed (500).
        public static let storageFailure = Code(.storageFailure)
        /// The repository failed (500).
        public static let databaseFailure = Code(.databaseFailure)
        /// A part the request needs cannot be reached for now, a data plane of another process (503
        /// `ServiceUnavailable`; the message names the part and holds no secret).
        public static let unavailable = Code(.unavailable)

        public var description: String { String(describing: wrapped) }
    }

    /// The kind of failure.
    public var code: Code
    /// A message suitable for API callers (not returned for 500s).
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?
    /// The file in which the error was raised.
    public var file: String
    /// The line on which the error was raised.
    public var line: Int

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A message suitable for API callers.
    ///   - cause: The underlying error, if any.
    ///   - file: The file in which the error was raised.
    ///   - line: The line on which the error was raised.
    public init(
        code: Code,
        message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.file = file
        self.line = line
    }

    public var description: String {
        var s = "TygerControlPlaneError.\(code): \(message)"
        if let cause { s += " (cause: \(cause))" }
        return s + " [\(file):\(line)]"
    }

    static func notFound(file: String = #fileID, line: Int = #line) -> Self {
        .init(code: .notFound, message: ErrorCode.notFoundMessage, file: file, line: line)
    }

    static func invalidInput(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        .init(code: .invalidInput, message: message, file: file, line: line)
    }

    static func badRequest(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        .init(code: .badRequest, message: message, file: file, line: line)
    }

    static func preconditionFailed(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        .init(code: .preconditionFailed, message: message, file: file, line: line)
    }
}
