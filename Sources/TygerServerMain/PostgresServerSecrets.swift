import Crypto
import Foundation
import Logging
import PostgresNIO
import TygerCore
import TygerModel
import TygerPostgres
import TygerServer

/// Bearer tokens in the shared database (`access_tokens`: hashes only), so that every server on it accepts the same
/// tokens and a revoked token stops working on all of them at once.
final class PostgresTokenStore: TokenStore {
    let database: TygerPostgres.PostgresDatabase
    let clock: WallClock

    init(database: TygerPostgres.PostgresDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    private func query<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        let logger = database.logger
        do {
            return try await database.withConnection { try await body($0, logger) }
        } catch let error as TygerServerError {
            throw error
        } catch {
            throw TygerServerError(
                .tokenStore,
                "token database error: \(TygerPostgres.PostgresDatabase.describe(error))",
                cause: error
            )
        }
    }

    func create(name: String) async throws -> IssuedToken {
        let issued = AccessTokens.generate(name: name, now: clock.seconds())
        try await add(issued.record)
        return issued
    }

    /// Stores `record` unless a token with its ID or hash is already there (tokens copied from a data directory's
    /// `tokens.json`). Returns whether it was added.
    @discardableResult
    func add(_ record: AccessTokenRecord) async throws -> Bool {
        try await query { connection, logger in
            var added = false
            for try await _ in try await connection.query(
                """
                INSERT INTO access_tokens (id, name, created_at, sha256)
                VALUES (\(record.id), \(record.name), \(record.createdAt), \(record.sha256))
                ON CONFLICT DO NOTHING RETURNING id
                """,
                logger: logger
            ) {
                added = true
            }
            return added
        }
    }

    func list() async throws -> [AccessTokenRecord] {
        try await query { connection, logger in
            var records: [AccessTokenRecord] = []
            for try await (id, name, createdAt, sha256) in try await connection.query(
                "SELECT id, name, created_at, sha256 FROM access_tokens ORDER BY created_at, id",
                logger: logger
            ).decode((String, String, String, String).self) {
                records.append(AccessTokenRecord(id: id, name: name, createdAt: createdAt, sha256: sha256))
            }
            return records
        }
    }

    func revoke(id: String) async throws -> Bool {
        try await query { connection, logger in
            var found = false
            for try await _ in try await connection.query(
                "DELETE FROM access_tokens WHERE id = \(id) RETURNING id",
                logger: logger
            ) {
                found = true
            }
            return found
        }
    }

    func authenticate(_ token: String) async throws -> AccessTokenRecord? {
        // Looked up by the SHA-256 of a 256-bit random secret: the hash is the key, as in the file store.
        let hash = AccessTokens.hash(token)
        return try await query { connection, logger in
            var found: AccessTokenRecord?
            for try await (id, name, createdAt) in try await connection.query(
                "SELECT id, name, created_at FROM access_tokens WHERE sha256 = \(hash)",
                logger: logger
            ).decode((String, String, String).self) {
                found = AccessTokenRecord(id: id, name: name, createdAt: createdAt, sha256: hash)
            }
            return found
        }
    }
}

/// The keys that sign access URLs, in the shared database (`signing_keys`), so that a URL one server signs is
/// accepted by every server on the database.
enum PostgresSigningKeys {
    /// The database's keys. The first server to start on a database stores its own keys there (its data
    /// directory's `keys/`); every later one uses the stored keys instead of its own.
    ///
    /// - Throws: `TygerServerError` `.signingKey` when a stored key is not a P-256 key in PEM form, `.tokenStore`
    ///   when the database fails.
    static func shared(local: SigningKeys, database: TygerPostgres.PostgresDatabase) async throws -> SigningKeys {
        let logger = database.logger
        let stored: [String: String]
        do {
            stored = try await database.withConnection { connection in
                try await connection.query(
                    """
                    INSERT INTO signing_keys (role, pem) VALUES ('primary', \(local.primary.pemRepresentation))
                    ON CONFLICT (role) DO NOTHING
                    """,
                    logger: logger
                )
                var keys: [String: String] = [:]
                for try await (role, pem) in try await connection.query(
                    "SELECT role, pem FROM signing_keys",
                    logger: logger
                ).decode((String, String).self) {
                    keys[role] = pem
                }
                return keys
            }
        } catch {
            throw TygerServerError(
                .tokenStore,
                "key database error: \(TygerPostgres.PostgresDatabase.describe(error))",
                cause: error
            )
        }
        guard let primaryPEM = stored["primary"],
            let primary = try? P256.Signing.PrivateKey(pemRepresentation: primaryPEM)
        else {
            throw TygerServerError(
                .signingKey,
                "the database's signing key is not an ECDSA P-256 private key in PEM form"
            )
        }
        var secondary: P256.Signing.PublicKey?
        if let pem = stored["secondary"] {
            secondary =
                (try? P256.Signing.PrivateKey(pemRepresentation: pem))?.publicKey
                ?? (try? P256.Signing.PublicKey(pemRepresentation: pem))
            if secondary == nil {
                throw TygerServerError(
                    .signingKey,
                    "the database's secondary signing key is not a P-256 key in PEM form"
                )
            }
        }
        return SigningKeys(primary: primary, secondary: secondary)
    }

    /// Rotates the database's keys: the primary becomes the secondary (URLs it signed stay valid until they expire)
    /// and a new primary is made. Servers use the new keys when they next start.
    static func rotate(database: TygerPostgres.PostgresDatabase) async throws {
        let logger = database.logger
        let fresh = P256.Signing.PrivateKey().pemRepresentation
        do {
            try await database.withConnection { connection in
                try await connection.withTransaction(logger: logger) { transaction in
                    try await transaction.query(
                        "DELETE FROM signing_keys WHERE role = 'secondary'",
                        logger: logger
                    )
                    try await transaction.query(
                        "UPDATE signing_keys SET role = 'secondary' WHERE role = 'primary'",
                        logger: logger
                    )
                    try await transaction.query(
                        "INSERT INTO signing_keys (role, pem) VALUES ('primary', \(fresh))",
                        logger: logger
                    )
                }
            }
        } catch {
            throw TygerServerError(
                .tokenStore,
                "key database error: \(TygerPostgres.PostgresDatabase.describe(error))",
                cause: error
            )
        }
    }
}
