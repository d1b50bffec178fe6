import Crypto
import TygerCore
import TygerModel

/// A bearer token as stored: never the token itself, only its SHA-256.
public struct AccessTokenRecord: Codable, Sendable, Equatable {
    /// A short random ID, for listing and revoking.
    public var id: String
    /// A human name (`--name`).
    public var name: String
    /// When it was created, `yyyy-MM-ddTHH:mm:ssZ`.
    public var createdAt: String
    /// Lowercase hex SHA-256 of the full token string.
    public var sha256: String

    /// Creates a record.
    public init(id: String, name: String, createdAt: String, sha256: String) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.sha256 = sha256
    }
}

/// A newly created token: the secret is shown once and never stored.
public struct IssuedToken: Sendable {
    /// What is stored.
    public var record: AccessTokenRecord
    /// The bearer token to give the client (`tyger_…`).
    public var token: String
}

/// Where bearer tokens are kept. Implementations: `JSONFileTokenStore` (the data directory's `tokens.json`) and
/// `InMemoryTokenStore` (tests). The control plane may add a database-backed one.
public protocol TokenStore: Sendable {
    /// Creates and stores a token.
    ///
    /// - Parameter name: A human name for the token.
    /// - Returns: The record and the secret token, which is not kept.
    /// - Throws: `TygerServerError` `.tokenStore` when the store cannot be written.
    func create(name: String) async throws -> IssuedToken

    /// Lists the stored tokens (without secrets).
    ///
    /// - Throws: `TygerServerError` `.tokenStore` when the store cannot be read.
    func list() async throws -> [AccessTokenRecord]

    /// Revokes a token.
    ///
    /// - Parameter id: The token's ID.
    /// - Returns: Whether a token with that ID existed.
    /// - Throws: `TygerServerError` `.tokenStore` when the store cannot be written.
    func revoke(id: String) async throws -> Bool

    /// Looks up the token a client presented.
    ///
    /// - Parameter token: The bearer token from the `Authorization` header.
    /// - Returns: Its record, or `nil` when it is unknown or revoked.
    /// - Throws: `TygerServerError` `.tokenStore` when the store cannot be read.
    func authenticate(_ token: String) async throws -> AccessTokenRecord?
}

/// Token generation and hashing shared by the stores.
public enum AccessTokens {
    /// The prefix of every token, so leaked tokens are easy to recognise.
    public static let prefix = "tyger_"

    /// Makes a new random token (32 random bytes, base64url) and its record.
    ///
    /// - Parameters:
    ///   - name: The token's name.
    ///   - now: Creation time, seconds since the epoch.
    public static func generate(name: String, now: Int64) -> IssuedToken {
        var rng = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let idBytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let token =
            prefix
            + Base64.encode(secret).replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
        let id = idBytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let record = AccessTokenRecord(id: id, name: name, createdAt: RFC3339.formatSeconds(now), sha256: hash(token))
        return IssuedToken(record: record, token: token)
    }

    /// Lowercase hex SHA-256 of a token string.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Finds the record whose hash matches `token`, comparing every record in constant time.
    static func find(_ token: String, in records: [AccessTokenRecord]) -> AccessTokenRecord? {
        let presented = Array(hash(token).utf8)
        var match: AccessTokenRecord?
        for record in records {
            let stored = Array(record.sha256.utf8)
            guard stored.count == presented.count else { continue }
            var diff: UInt8 = 0
            for i in 0..<stored.count { diff |= stored[i] ^ presented[i] }
            if diff == 0 { match = record }
        }
        return match
    }
}
