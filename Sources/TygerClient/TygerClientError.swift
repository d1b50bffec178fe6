public import TygerCore

/// The error thrown by the HTTP clients (control plane and data plane).
public struct TygerClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value: Hashable, Sendable {
            case invalidURL, transport, http, authentication, notLoggedIn, invalidResponse
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// A URL could not be parsed or uses an unsupported scheme.
        public static let invalidURL = Code(.invalidURL)
        /// The connection failed (refused, reset, timed out).
        public static let transport = Code(.transport)
        /// The server answered with an error status.
        public static let http = Code(.http)
        /// The access URL or token was refused (403/401).
        public static let authentication = Code(.authentication)
        /// No server to talk to.
        public static let notLoggedIn = Code(.notLoggedIn)
        /// The server answered with a body that is not what the operation returns.
        public static let invalidResponse = Code(.invalidResponse)
    }

    public var code: Code
    public var message: String
    /// HTTP status, when the server answered.
    public var status: Int?
    /// `x-ms-error-code` or the JSON error code, when the server gave one.
    public var errorCode: String?
    /// For `.transport`: the connection was made and then closed before any answer (a server shedding connections
    /// under load, an idle connection closed as it was reused), so a request that is safe to repeat may be sent again.
    public var closedBeforeAnswer = false

    public init(_ code: Code, _ message: String, status: Int? = nil, errorCode: String? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.errorCode = errorCode
    }

    public var description: String { message }
}

extension TygerClientError: TransferInterruption {
    /// A connection that failed (after the retries): the link, not the data or the server's refusal.
    public var interruptsTransfer: Bool { code == .transport }
}
