/// The error thrown by the server library outside of request handling: configuration, keys, tokens, listeners.
///
/// Request failures are `APIError`s (or domain errors that convert to one); this type covers what an operator
/// sees when the server cannot start or a `tyger-server` admin command fails.
public struct TygerServerError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. A struct, not an enum, so new codes do not break clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidArgument, invalidConfiguration, signingKey, tokenStore, alreadyRunning, io
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A value passed to an API is out of range or malformed (a TTL, a container ID, an endpoint).
        public static let invalidArgument = Code(.invalidArgument)
        /// The server configuration cannot work (bad listener address, missing TLS file).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A signing key file cannot be read, parsed or created.
        public static let signingKey = Code(.signingKey)
        /// The token file cannot be read or written.
        public static let tokenStore = Code(.tokenStore)
        /// Another server is already listening on the data directory's socket.
        public static let alreadyRunning = Code(.alreadyRunning)
        /// A file-system call failed.
        public static let io = Code(.io)

        public var description: String { "\(value)" }
    }

    /// The kind of failure.
    public var code: Code
    /// A human message, printed as is by `tyger-server`.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?
    /// Where the error was thrown.
    public var file: String
    /// Where the error was thrown.
    public var line: Int

    /// Creates an error.
    public init(
        _ code: Code,
        _ message: String,
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
        if let cause { return "\(message): \(cause)" }
        return message
    }
}
