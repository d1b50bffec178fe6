/// Why a signed access URL was refused.
public struct SignedURLError: Error, Sendable, CustomStringConvertible {
    /// What kind of refusal this is. A struct, not an enum, so new codes do not break clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case authenticationFailed, permissionMismatch }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The URL is missing a parameter, malformed, not yet valid, expired, signed for another container or with
        /// an unknown key, or tampered with.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The URL is genuine but does not grant the operation (a read URL used to write).
        public static let permissionMismatch = Code(.permissionMismatch)

        public var description: String { "\(value)" }
    }

    /// The kind of refusal.
    public var code: Code
    /// What exactly is wrong, safe to show the client.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
