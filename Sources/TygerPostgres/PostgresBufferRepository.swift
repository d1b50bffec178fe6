public import Foundation
import Logging
import PostgresNIO
public import TygerControlPlane
import TygerModel

/// A ``BufferRepository`` on PostgreSQL, for servers that share one database: the same tables and rules as
/// ``SQLiteBufferRepository``. Changes that read before they write lock the buffer's row (`SELECT … FOR UPDATE`)
/// in a transaction, so two servers changing one buffer take turns.
public final class PostgresBufferRepository: BufferRepository {
    public let database: PostgresDatabase
    private var client: PostgresClient { database.client }
    private var logger: Logger { database.logger }

    public init(database: PostgresDatabase) {
        self.database = database
    }

    // MARK: - BufferRepository

    public func create(_ record: BufferRecord) async throws {
        try await transaction("create a buffer") { connection in
            let created = RFC3339.micros(record.createdAt)
            let expires = record.expiresAt.map(RFC3339.micros)
            try await connection.query(
                """
                INSERT INTO buffers (id, location, created_at, is_soft_deleted, expires_at)
                VALUES (\(record.id), \(record.location), \(created), \(record.isSoftDeleted), \(expires))
                """,
                logger: self.logger
            )
            try await Self.insertTags(connection, id: record.id, tags: record.tags, logger: self.logger)
        }
    }

    public func get(id: String, softDeleted: Bool) async throws -> BufferRecord? {
        try await connection("read a buffer") { connection in
            try await Self.records(
                connection,
                "SELECT \(unescaped: Self.columns) FROM buffers WHERE id = \(id) AND is_soft_deleted = \(softDeleted)",
                logger: self.logger
            ).first
        }
    }

    public func list(_ filter: BufferFilter, limit: Int, after: BufferCursor?) async throws -> [BufferRecord] {
        guard limit > 0 else { return [] }
        return try await connection("list buffers") { connection in
            var query = Self.Where(filter)
            if let after {
                let created = query.values.bind(after.createdAtMicros)
                query.add(
                    "(created_at < \(created) OR (created_at = \(created) AND id < \(query.values.bind(after.id))))"
                )
            }
            let sql =
                "SELECT \(Self.columns) FROM buffers \(query.sql) ORDER BY created_at DESC, id DESC LIMIT \(query.values.bind(limit))"
            return try await Self.records(connection, query.values.query(sql), logger: self.logger)
        }
    }

    public func count(_ filter: BufferFilter) async throws -> Int {
        try await connection("count buffers") { connection in
            let query = Self.Where(filter)
            let rows = try await connection.query(
                query.values.query("SELECT COUNT(*) FROM buffers \(query.sql)"),
                logger: self.logger
            )
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    public func update(
        id: String,
        softDeleted: Bool,
        ifMatch: String?,
        expiresAt: Date?,
        tags: [String: String]
    ) async throws -> BufferChangeOutcome {
        try await transaction("update a buffer") { connection in
            guard
                var record = try await Self.records(
                    connection,
                    """
                    SELECT \(unescaped: Self.columns) FROM buffers WHERE id = \(id) AND is_soft_deleted = \(softDeleted)
                    FOR UPDATE
                    """,
                    logger: self.logger
                ).first
            else { return .notFound }
            if let ifMatch, ifMatch != record.eTag { return .eTagMismatch(record) }
            if let expiresAt {
                record.expiresAt = RFC3339.normalize(expiresAt)
                let micros = RFC3339.micros(expiresAt)
                try await connection.query(
                    "UPDATE buffers SET expires_at = \(micros) WHERE id = \(id)",
                    logger: self.logger
                )
            }
            record.tags = tags
            try await connection.query("DELETE FROM buffer_tags WHERE buffer_id = \(id)", logger: self.logger)
            try await Self.insertTags(connection, id: id, tags: tags, logger: self.logger)
            return .changed(record)
        }
    }

    public func changeState(id: String, _ change: BufferStateChange, now: Date) async throws -> BufferChangeOutcome {
        try await transaction("change a buffer's state") { connection in
            let nowMicros = RFC3339.micros(now)
            guard
                var record = try await Self.records(
                    connection,
                    """
                    SELECT \(unescaped: Self.columns) FROM buffers
                    WHERE id = \(id) AND (expires_at IS NULL OR expires_at > \(nowMicros)) FOR UPDATE
                    """,
                    logger: self.logger
                ).first
            else { return .notFound }
            guard record.isSoftDeleted == change.fromSoftDeleted else { return .wrongState(record) }
            let expires = change.expiresAt.map(RFC3339.micros)
            try await connection.query(
                "UPDATE buffers SET is_soft_deleted = \(change.toSoftDeleted), expires_at = \(expires) WHERE id = \(id)",
                logger: self.logger
            )
            record.isSoftDeleted = change.toSoftDeleted
            record.expiresAt = change.expiresAt
            return .changed(record)
        }
    }

    public func changeStates(matching filter: BufferFilter, _ change: BufferStateChange, now: Date) async throws -> Int
    {
        var f = filter
        f.softDeleted = change.fromSoftDeleted
        f.liveAt = now
        let selection = f
        return try await connection("change buffers' states") { connection in
            var query = Self.Where(selection)
            let set =
                "SET is_soft_deleted = \(query.values.bind(change.toSoftDeleted)), "
                + "expires_at = \(query.values.bind(change.expiresAt.map(RFC3339.micros)))"
            let rows = try await connection.query(
                query.values.query("UPDATE buffers \(set) \(query.sql) RETURNING id"),
                logger: self.logger
            )
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
    }

    public func softDeleteExpired(now: Date, newExpiresAt: Date, limit: Int) async throws -> [String] {
        try await connection("soft-delete expired buffers") { connection in
            let rows = try await connection.query(
                """
                UPDATE buffers SET is_soft_deleted = TRUE, expires_at = \(RFC3339.micros(newExpiresAt))
                WHERE id IN (SELECT id FROM buffers WHERE is_soft_deleted = FALSE AND expires_at IS NOT NULL
                             AND expires_at <= \(RFC3339.micros(now)) ORDER BY expires_at, id LIMIT \(limit)
                             FOR UPDATE SKIP LOCKED)
                RETURNING id
                """,
                logger: self.logger
            )
            return try await Self.strings(rows).sorted()
        }
    }

    public func purgeable(now: Date, limit: Int) async throws -> [String] {
        try await connection("list buffers due to be purged") { connection in
            let rows = try await connection.query(
                """
                SELECT id FROM buffers WHERE is_soft_deleted = TRUE AND expires_at IS NOT NULL
                    AND expires_at <= \(RFC3339.micros(now))
                ORDER BY expires_at, id LIMIT \(limit)
                """,
                logger: self.logger
            )
            return try await Self.strings(rows)
        }
    }

    public func purge(ids: [String], now: Date) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try await transaction("purge expired buffers") { connection in
            let rows = try await connection.query(
                """
                DELETE FROM buffers
                WHERE id = ANY(\(ids)) AND is_soft_deleted = TRUE AND expires_at IS NOT NULL
                    AND expires_at <= \(RFC3339.micros(now))
                RETURNING id
                """,
                logger: self.logger
            )
            let ids = try await Self.strings(rows).sorted()
            if !ids.isEmpty {
                try await connection.query(
                    "DELETE FROM buffer_writer_leases WHERE buffer_id = ANY(\(ids))",
                    logger: self.logger
                )
            }
            return ids
        }
    }

    public func writerLease(bufferId: String) async throws -> BufferWriterLease? {
        try await connection("read a writer lease") { connection in
            try await Self.writerLease(connection, bufferId: bufferId, forUpdate: false, logger: self.logger)
        }
    }

    public func changeWriterLease(
        bufferId: String,
        leaseId: String,
        _ change: BufferWriterLeaseChange,
        now: Date
    ) async throws -> BufferWriterLeaseOutcome {
        try await transaction("change a writer lease") { connection in
            // Two servers taking the lease of a buffer that has none yet: the row lock cannot order them, the
            // transaction-scoped advisory lock on the buffer's ID does.
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext(\(bufferId)))",
                logger: self.logger
            )
            let current = try await Self.writerLease(
                connection,
                bufferId: bufferId,
                forUpdate: true,
                logger: self.logger
            )
            let (store, outcome) = change.apply(to: current, bufferId: bufferId, leaseId: leaseId, now: now)
            if let store {
                try await connection.query(
                    """
                    INSERT INTO buffer_writer_leases (buffer_id, lease_id, state, expires_at)
                    VALUES (\(bufferId), \(store.leaseId), \(store.storedState.rawValue), \(RFC3339.micros(store.expiresAt)))
                    ON CONFLICT (buffer_id) DO UPDATE
                        SET lease_id = excluded.lease_id, state = excluded.state, expires_at = excluded.expires_at
                    """,
                    logger: self.logger
                )
            }
            return outcome
        }
    }

    // MARK: - SQL helpers

    private static let columns = "id, location, created_at, is_soft_deleted, expires_at"

    private static func writerLease(
        _ connection: PostgresConnection,
        bufferId: String,
        forUpdate: Bool,
        logger: Logger
    ) async throws -> BufferWriterLease? {
        let rows = try await connection.query(
            """
            SELECT lease_id, state, expires_at FROM buffer_writer_leases WHERE buffer_id = \(bufferId)
            \(unescaped: forUpdate ? "FOR UPDATE" : "")
            """,
            logger: logger
        )
        for try await (leaseId, state, expires) in rows.decode((String, String, Int64).self) {
            return BufferWriterLease(
                bufferId: bufferId,
                leaseId: leaseId,
                storedState: BufferWriteState(rawValue: state) ?? .failed,
                expiresAt: RFC3339.date(micros: expires)
            )
        }
        return nil
    }

    /// A WHERE clause for a filter, with its bound values.
    struct Where {
        var conditions: [String] = []
        var values = BoundValues()

        init(_ filter: BufferFilter) {
            if let softDeleted = filter.softDeleted { add("is_soft_deleted = \(values.bind(softDeleted))") }
            if let liveAt = filter.liveAt {
                add("(expires_at IS NULL OR expires_at > \(values.bind(RFC3339.micros(liveAt))))")
            }
            for (key, value) in filter.tags.sorted(by: { $0.key < $1.key }) {
                add("EXISTS (\(tagExists(key, value)))")
            }
            for (key, value) in filter.excludeTags.sorted(by: { $0.key < $1.key }) {
                add("NOT EXISTS (\(tagExists(key, value)))")
            }
        }

        private mutating func tagExists(_ key: String, _ value: String) -> String {
            "SELECT 1 FROM buffer_tags t WHERE t.buffer_id = buffers.id AND t.key = \(values.bind(key)) "
                + "AND t.value = \(values.bind(value))"
        }

        mutating func add(_ condition: String) { conditions.append(condition) }

        var sql: String { conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") }
    }

    private static func insertTags(
        _ connection: PostgresConnection,
        id: String,
        tags: [String: String],
        logger: Logger
    ) async throws {
        guard !tags.isEmpty else { return }
        let keys = tags.keys.sorted()
        let values = keys.map { tags[$0]! }
        try await connection.query(
            "INSERT INTO buffer_tags (buffer_id, key, value) SELECT \(id), * FROM unnest(\(keys)::text[], \(values)::text[])",
            logger: logger
        )
    }

    /// Runs a buffer query and loads the tags of the buffers it found with one more.
    private static func records(
        _ connection: PostgresConnection,
        _ query: PostgresQuery,
        logger: Logger
    ) async throws -> [BufferRecord] {
        var records: [BufferRecord] = []
        let rows = try await connection.query(query, logger: logger)
        for try await (id, location, created, softDeleted, expires) in rows.decode(
            (String, String, Int64, Bool, Int64?).self
        ) {
            records.append(
                BufferRecord(
                    id: id,
                    location: location,
                    createdAt: RFC3339.date(micros: created),
                    isSoftDeleted: softDeleted,
                    expiresAt: expires.map { RFC3339.date(micros: $0) },
                    tags: [:]
                )
            )
        }
        guard !records.isEmpty else { return [] }
        let ids = records.map(\.id)
        var tagsByID: [String: [String: String]] = [:]
        let tagRows = try await connection.query(
            "SELECT buffer_id, key, value FROM buffer_tags WHERE buffer_id = ANY(\(ids))",
            logger: logger
        )
        for try await (id, key, value) in tagRows.decode((String, String, String).self) {
            tagsByID[id, default: [:]][key] = value
        }
        for i in records.indices { records[i].tags = tagsByID[records[i].id] ?? [:] }
        return records
    }

    private static func strings(_ rows: PostgresRowSequence) async throws -> [String] {
        var values: [String] = []
        for try await value in rows.decode(String.self) { values.append(value) }
        return values
    }

    private func connection<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await database.withConnection(body)
        } catch let error as TygerControlPlaneError {
            throw error
        } catch let error as PostgresDatabase.Unavailable {
            throw TygerControlPlaneError(
                code: .unavailable,
                message: "The database cannot be reached; try again later.",
                cause: error
            )
        } catch {
            throw TygerControlPlaneError(
                code: .databaseFailure,
                message: "Cannot \(what): \(PostgresDatabase.describe(error))",
                cause: error
            )
        }
    }

    private func transaction<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = logger
        return try await connection(what) { connection in
            try await connection.withTransaction(logger: logger) { try await body($0) }
        }
    }
}
