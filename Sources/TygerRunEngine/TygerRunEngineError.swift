/// The error thrown by the run engine: invalid input, missing resources, and failures of the executor.
///
/// `code` tells the HTTP layer which status to answer with; `message` is shown to users as is.
public struct TygerRunEngineError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidInput, notFound, alreadyCalled, conflict, preconditionFailed, executorFailure, storage
            case unavailable
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// The request is invalid (upstream's `InvalidInput`, HTTP 400).
        public static let invalidInput = Code(.invalidInput)
        /// The codespec, run or buffer does not exist (HTTP 404).
        public static let notFound = Code(.notFound)
        /// An ephemeral buffer was already attached to once (upstream's relay `AlreadyCalled`).
        public static let alreadyCalled = Code(.alreadyCalled)
        /// The operation does not fit the run's current state (e.g. attaching to a finished run).
        public static let conflict = Code(.conflict)
        /// An `If-Match` ETag does not match the run's current one (HTTP 412).
        public static let preconditionFailed = Code(.preconditionFailed)
        /// Starting or supervising processes failed.
        public static let executorFailure = Code(.executorFailure)
        /// The repository (database) failed.
        public static let storage = Code(.storage)
        /// The database cannot be reached for now (HTTP 503).
        public static let unavailable = Code(.unavailable)

        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation, shown to users.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error)?
    /// Where the error was created.
    public var file: String
    /// Where the error was created.
    public var line: Int

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.cause = cause
        self.file = file
        self.line = line
    }

    public var description: String { message }

    static func invalid(_ message: String, file: String = #fileID, line: Int = #line) -> TygerRunEngineError {
        TygerRunEngineError(.invalidInput, message, file: file, line: line)
    }
}
