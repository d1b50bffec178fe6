public import Foundation
private import GRDB
import TygerModel

/// A ``BufferRepository`` backed by an SQLite database file, through GRDB.
///
/// The database lives in `<directory>/control-plane.sqlite` (WAL mode, via a GRDB `DatabasePool`: concurrent reads,
/// serialized writes). The schema is created and upgraded by ``SQLiteBufferRepository/migrator`` when the
/// repository is opened; see `docs/control-plane.md` for the tables.
///
/// Timestamps are stored as INTEGER microseconds since the Unix epoch (UTC), so ordering and continuation cursors
/// are exact. Tags live in `buffer_tags` (one row per tag, `ON DELETE CASCADE`).
public final class SQLiteBufferRepository: BufferRepository {
    /// The file name of the database inside the data directory.
    public static let fileName = "control-plane.sqlite"

    private let pool: DatabasePool

    /// The path of the database file.
    public let path: String

    /// Opens (creating if needed) the database in a directory and migrates it to the current schema.
    ///
    /// - Parameter directory: The data directory; created with intermediate directories if missing.
    /// - Throws: ``TygerControlPlaneError`` with code ``TygerControlPlaneError/Code/databaseFailure`` when the
    ///   directory cannot be created or the database cannot be opened or migrated.
    public convenience init(directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TygerControlPlaneError(
                code: .databaseFailure,
                message: "Cannot create data directory \(directory.path)",
                cause: error
            )
        }
        try self.init(path: directory.appendingPathComponent(Self.fileName).path)
    }

    /// Opens (creating if needed) a database file and migrates it to the current schema.
    ///
    /// - Parameter path: The database file path.
    /// - Throws: ``TygerControlPlaneError`` with code ``TygerControlPlaneError/Code/databaseFailure`` when the
    ///   database cannot be opened or migrated.
    public init(path: String) throws {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            configuration.busyMode = .timeout(10)
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw TygerControlPlaneError(code: .databaseFailure, message: "Cannot open database \(path)", cause: error)
        }
    }

    /// The identifiers of the migrations applied to this database, oldest first.
    ///
    /// - Returns: Migration identifiers such as `v1-buffers`.
    /// - Throws: On database errors.
    public func appliedMigrations() async throws -> [String] {
        try await read { db in try Self.migrator.appliedMigrations(db) }
    }

    /// The identifiers of every migration this version knows, oldest first.
    public static var knownMigrations: [String] { migrator.migrations }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-buffers") { db in
            try db.execute(
                sql: """
                    CREATE TABLE buffers (
                        id TEXT NOT NULL PRIMARY KEY,
                        location TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        is_soft_deleted INTEGER NOT NULL DEFAULT 0 CHECK (is_soft_deleted IN (0, 1)),
                        expires_at INTEGER
                    );
                    CREATE INDEX buffers_listing ON buffers (is_soft_deleted, created_at DESC, id DESC);
                    CREATE TABLE buffer_tags (
                        buffer_id TEXT NOT NULL REFERENCES buffers (id) ON DELETE CASCADE,
                        key TEXT NOT NULL,
                        value TEXT NOT NULL,
                        PRIMARY KEY (buffer_id, key)
                    ) WITHOUT ROWID;
                    CREATE INDEX buffer_tags_key_value ON buffer_tags (key, value, buffer_id);
                    """
            )
        }
        migrator.registerMigration("v2-buffers-expiry-index") { db in
            try db.execute(
                sql: """
                    CREATE INDEX buffers_expiry ON buffers (is_soft_deleted, expires_at)
                        WHERE expires_at IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v3-buffer-writer-leases") { db in
            // No foreign key: data-plane containers need not have a buffer record; purge deletes the row.
            try db.execute(
                sql: """
                    CREATE TABLE buffer_writer_leases (
                        buffer_id TEXT NOT NULL PRIMARY KEY,
                        lease_id TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'failed')),
                        expires_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    """
            )
        }
        return migrator
    }

    // MARK: - BufferRepository

    public func create(_ record: BufferRecord) async throws {
        try await write { db in
            try db.execute(
                sql:
                    "INSERT INTO buffers (id, location, created_at, is_soft_deleted, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    record.id, record.location, RFC3339.micros(record.createdAt), record.isSoftDeleted,
                    record.expiresAt.map(RFC3339.micros),
                ]
            )
            try Self.insertTags(db, id: record.id, tags: record.tags)
        }
    }

    public func get(id: String, softDeleted: Bool) async throws -> BufferRecord? {
        try await read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM buffers WHERE id = ? AND is_soft_deleted = ?",
                    arguments: [id, softDeleted]
                )
            else { return nil }
            return try Self.records(db, rows: [row]).first
        }
    }

    public func list(_ filter: BufferFilter, limit: Int, after: BufferCursor?) async throws -> [BufferRecord] {
        guard limit > 0 else { return [] }
        return try await read { db in
            var (conditions, arguments) = Self.whereClause(filter)
            if let after {
                conditions.append("(created_at < ? OR (created_at = ? AND id < ?))")
                arguments += [after.createdAtMicros, after.createdAtMicros, after.id]
            }
            arguments.append(limit)
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Self.columns) FROM buffers \(Self.sqlWhere(conditions)) "
                    + "ORDER BY created_at DESC, id DESC LIMIT ?",
                arguments: StatementArguments(arguments)
            )
            return try Self.records(db, rows: rows)
        }
    }

    public func count(_ filter: BufferFilter) async throws -> Int {
        try await read { db in
            let (conditions, arguments) = Self.whereClause(filter)
            return try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM buffers \(Self.sqlWhere(conditions))",
                arguments: StatementArguments(arguments)
            ) ?? 0
        }
    }

    public func update(
        id: String,
        softDeleted: Bool,
        ifMatch: String?,
        expiresAt: Date?,
        tags: [String: String]
    ) async throws -> BufferChangeOutcome {
        try await write { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM buffers WHERE id = ? AND is_soft_deleted = ?",
                    arguments: [id, softDeleted]
                ),
                var record = try Self.records(db, rows: [row]).first
            else { return .notFound }
            if let ifMatch, ifMatch != record.eTag { return .eTagMismatch(record) }
            if let expiresAt {
                record.expiresAt = RFC3339.normalize(expiresAt)
                try db.execute(
                    sql: "UPDATE buffers SET expires_at = ? WHERE id = ?",
                    arguments: [RFC3339.micros(expiresAt), id]
                )
            }
            record.tags = tags
            try db.execute(sql: "DELETE FROM buffer_tags WHERE buffer_id = ?", arguments: [id])
            try Self.insertTags(db, id: id, tags: tags)
            return .changed(record)
        }
    }

    public func changeState(id: String, _ change: BufferStateChange, now: Date) async throws -> BufferChangeOutcome {
        try await write { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM buffers WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)",
                    arguments: [id, RFC3339.micros(now)]
                ),
                var record = try Self.records(db, rows: [row]).first
            else { return .notFound }
            guard record.isSoftDeleted == change.fromSoftDeleted else { return .wrongState(record) }
            try db.execute(
                sql: "UPDATE buffers SET is_soft_deleted = ?, expires_at = ? WHERE id = ?",
                arguments: [change.toSoftDeleted, change.expiresAt.map(RFC3339.micros), id]
            )
            change.apply(to: &record)
            return .changed(record)
        }
    }

    public func changeStates(matching filter: BufferFilter, _ change: BufferStateChange, now: Date) async throws -> Int
    {
        var f = filter
        f.softDeleted = change.fromSoftDeleted
        f.liveAt = now
        return try await write { [f] db in
            let (conditions, arguments) = Self.whereClause(f)
            try db.execute(
                sql: "UPDATE buffers SET is_soft_deleted = ?, expires_at = ? \(Self.sqlWhere(conditions))",
                arguments: StatementArguments(
                    [change.toSoftDeleted, change.expiresAt.map(RFC3339.micros)] + arguments
                )
            )
            return db.changesCount
        }
    }

    public func softDeleteExpired(now: Date, newExpiresAt: Date, limit: Int) async throws -> [String] {
        try await write { db in
            try String.fetchAll(
                db,
                sql: """
                    UPDATE buffers SET is_soft_deleted = 1, expires_at = ?
                    WHERE id IN (SELECT id FROM buffers WHERE is_soft_deleted = 0 AND expires_at IS NOT NULL
                                 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?)
                    RETURNING id
                    """,
                arguments: [RFC3339.micros(newExpiresAt), RFC3339.micros(now), limit]
            ).sorted()
        }
    }

    public func purgeable(now: Date, limit: Int) async throws -> [String] {
        try await read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM buffers WHERE is_soft_deleted = 1 AND expires_at IS NOT NULL AND expires_at <= ?
                    ORDER BY expires_at, id LIMIT ?
                    """,
                arguments: [RFC3339.micros(now), limit]
            )
        }
    }

    public func purge(ids: [String], now: Date) async throws -> [String] {
        try await write { db in
            var deleted: [String] = []
            for id in ids {
                let gone = try String.fetchAll(
                    db,
                    sql: """
                        DELETE FROM buffers
                        WHERE id = ? AND is_soft_deleted = 1 AND expires_at IS NOT NULL AND expires_at <= ?
                        RETURNING id
                        """,
                    arguments: [id, RFC3339.micros(now)]
                )
                deleted += gone
            }
            let ids = deleted.sorted()
            for id in ids {
                try db.execute(sql: "DELETE FROM buffer_writer_leases WHERE buffer_id = ?", arguments: [id])
            }
            return ids
        }
    }

    public func writerLease(bufferId: String) async throws -> BufferWriterLease? {
        try await read { db in try Self.writerLease(db, bufferId: bufferId) }
    }

    public func changeWriterLease(
        bufferId: String,
        leaseId: String,
        _ change: BufferWriterLeaseChange,
        now: Date
    ) async throws -> BufferWriterLeaseOutcome {
        try await write { db in
            let current = try Self.writerLease(db, bufferId: bufferId)
            let (store, outcome) = change.apply(to: current, bufferId: bufferId, leaseId: leaseId, now: now)
            if let store {
                try db.execute(
                    sql: """
                        INSERT INTO buffer_writer_leases (buffer_id, lease_id, state, expires_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT (buffer_id) DO UPDATE
                            SET lease_id = excluded.lease_id, state = excluded.state, expires_at = excluded.expires_at
                        """,
                    arguments: [bufferId, store.leaseId, store.storedState.rawValue, RFC3339.micros(store.expiresAt)]
                )
            }
            return outcome
        }
    }

    private static func writerLease(_ db: Database, bufferId: String) throws -> BufferWriterLease? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT lease_id, state, expires_at FROM buffer_writer_leases WHERE buffer_id = ?",
                arguments: [bufferId]
            )
        else { return nil }
        let stateText: String = row["state"]
        return BufferWriterLease(
            bufferId: bufferId,
            leaseId: row["lease_id"],
            storedState: BufferWriteState(rawValue: stateText) ?? .failed,
            expiresAt: RFC3339.date(micros: row["expires_at"])
        )
    }

    // MARK: - SQL helpers

    private static let columns = "id, location, created_at, is_soft_deleted, expires_at"

    private static func sqlWhere(_ conditions: [String]) -> String {
        conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
    }

    private static func whereClause(_ filter: BufferFilter) -> ([String], [(any DatabaseValueConvertible)?]) {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let softDeleted = filter.softDeleted {
            conditions.append("is_soft_deleted = ?")
            arguments.append(softDeleted)
        }
        if let liveAt = filter.liveAt {
            conditions.append("(expires_at IS NULL OR expires_at > ?)")
            arguments.append(RFC3339.micros(liveAt))
        }
        let tagExists = "SELECT 1 FROM buffer_tags t WHERE t.buffer_id = buffers.id AND t.key = ? AND t.value = ?"
        for (key, value) in filter.tags.sorted(by: { $0.key < $1.key }) {
            conditions.append("EXISTS (\(tagExists))")
            arguments += [key, value]
        }
        for (key, value) in filter.excludeTags.sorted(by: { $0.key < $1.key }) {
            conditions.append("NOT EXISTS (\(tagExists))")
            arguments += [key, value]
        }
        return (conditions, arguments)
    }

    private static func insertTags(_ db: Database, id: String, tags: [String: String]) throws {
        for (key, value) in tags {
            try db.execute(
                sql: "INSERT INTO buffer_tags (buffer_id, key, value) VALUES (?, ?, ?)",
                arguments: [id, key, value]
            )
        }
    }

    /// Converts buffer rows to records, loading their tags with one query.
    private static func records(_ db: Database, rows: [Row]) throws -> [BufferRecord] {
        guard !rows.isEmpty else { return [] }
        let ids: [String] = rows.map { $0["id"] }
        var tagsByID: [String: [String: String]] = [:]
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
        for row in try Row.fetchAll(
            db,
            sql: "SELECT buffer_id, key, value FROM buffer_tags WHERE buffer_id IN (\(placeholders))",
            arguments: StatementArguments(ids)
        ) {
            tagsByID[row["buffer_id"], default: [:]][row["key"]] = row["value"] as String
        }
        return rows.map { row in
            let id: String = row["id"]
            let expires: Int64? = row["expires_at"]
            return BufferRecord(
                id: id,
                location: row["location"],
                createdAt: RFC3339.date(micros: row["created_at"]),
                isSoftDeleted: row["is_soft_deleted"],
                expiresAt: expires.map { RFC3339.date(micros: $0) },
                tags: tagsByID[id] ?? [:]
            )
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as TygerControlPlaneError {
            throw error
        } catch {
            throw TygerControlPlaneError(code: .databaseFailure, message: "Database read failed", cause: error)
        }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(body)
        } catch let error as TygerControlPlaneError {
            throw error
        } catch {
            throw TygerControlPlaneError(code: .databaseFailure, message: "Database write failed", cause: error)
        }
    }
}
