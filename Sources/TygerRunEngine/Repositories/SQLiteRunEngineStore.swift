import Foundation
import GRDB
import TygerModel

/// The run engine's SQLite database (GRDB): codespecs and runs in `<directory>/runs.sqlite`, with migrations.
///
/// The file is the engine's own; the buffer repository keeps its own database. Rows hold the JSON documents plus
/// the columns queries need (name/version, created time, status, tags).
public final class SQLiteRunEngineStore: RunEngineStore {
    /// The codespec repository over this database.
    public let codespecs: any CodespecRepository
    /// The run repository over this database.
    public let runs: any RunRepository
    /// The database file.
    public let path: String

    /// Opens (creating if needed) `<directory>/runs.sqlite` and applies migrations.
    ///
    /// - Throws: `TygerRunEngineError` `.storage` when the directory or database cannot be opened or migrated.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            path = directory + "/runs.sqlite"
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(queue)
            codespecs = SQLiteCodespecRepository(queue: queue)
            runs = SQLiteRunRepository(queue: queue)
        } catch let error as TygerRunEngineError {
            throw error
        } catch {
            throw TygerRunEngineError(.storage, "cannot open the run database in \(directory): \(error)", cause: error)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-codespecs-runs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE codespecs (
                        name TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, spec TEXT NOT NULL,
                        PRIMARY KEY (name, version));
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, status TEXT NOT NULL,
                        run TEXT NOT NULL);
                    CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
                    CREATE INDEX runs_status ON runs (status);
                    CREATE TABLE run_tags (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL,
                        PRIMARY KEY (run_id, key));
                    CREATE INDEX run_tags_key_value ON run_tags (key, value);
                    """
            )
        }
        migrator.registerMigration("v2-run-idempotency-keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE run_idempotency_keys (
                        idempotency_key TEXT PRIMARY KEY,
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE);
                    """
            )
        }
        return migrator
    }
}

func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try TygerJSON.makeEncoder().encode(value), as: UTF8.self)
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try TygerJSON.makeDecoder().decode(T.self, from: Data(text.utf8))
}

final class SQLiteCodespecRepository: CodespecRepository {
    private let queue: DatabaseQueue

    init(queue: DatabaseQueue) { self.queue = queue }

    func upsert(name: String, spec: Codespec, now: Date) async throws -> Codespec {
        try await storage {
            try await queue.write { db in
                let latestText = try String.fetchOne(
                    db,
                    sql: "SELECT spec FROM codespecs WHERE name = ? ORDER BY version DESC LIMIT 1",
                    arguments: [name]
                )
                let latest = try latestText.map { try decodeJSON(Codespec.self, $0) }
                let stored: Codespec
                switch CodespecUpsert(name: name, spec: spec, latest: latest, now: now) {
                case .existing(let unchanged): return unchanged
                case .next(let next): stored = next
                }
                try db.execute(
                    sql: "INSERT INTO codespecs (name, version, created_at, spec) VALUES (?, ?, ?, ?)",
                    arguments: [name, stored.version, RunPosition.micros(now), try encodeJSON(stored)]
                )
                return try decodeJSON(Codespec.self, try encodeJSON(stored))  // as later reads will see it
            }
        }
    }

    func latest(name: String) async throws -> Codespec? {
        try await storage {
            try await queue.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT spec FROM codespecs WHERE name = ? ORDER BY version DESC LIMIT 1",
                    arguments: [name]
                ).map { try decodeJSON(Codespec.self, $0) }
            }
        }
    }

    func get(name: String, version: Int) async throws -> Codespec? {
        try await storage {
            try await queue.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT spec FROM codespecs WHERE name = ? AND version = ?",
                    arguments: [name, version]
                ).map { try decodeJSON(Codespec.self, $0) }
            }
        }
    }

    func list(prefix: String?, limit: Int, after: String?) async throws -> [Codespec] {
        try await storage {
            try await queue.read { db in
                var sql = """
                    SELECT c.spec FROM codespecs c
                    WHERE c.version = (SELECT MAX(version) FROM codespecs WHERE name = c.name)
                    """
                var arguments: StatementArguments = []
                if let prefix, !prefix.isEmpty {
                    sql += " AND substr(c.name, 1, ?) = ?"
                    arguments += [prefix.utf8.count, prefix]
                }
                if let after {
                    sql += " AND c.name > ?"
                    arguments += [after]
                }
                sql += " ORDER BY c.name COLLATE BINARY LIMIT ?"
                arguments += [max(0, limit)]
                return try String.fetchAll(db, sql: sql, arguments: arguments).map { try decodeJSON(Codespec.self, $0) }
            }
        }
    }
}

final class SQLiteRunRepository: RunRepository {
    private let queue: DatabaseQueue

    init(queue: DatabaseQueue) { self.queue = queue }

    func create(_ run: Run, now: Date, idempotencyKey: String?) async throws -> Run {
        try await storage {
            try await queue.write { db in
                if let idempotencyKey,
                    try Bool.fetchOne(
                        db,
                        sql: "SELECT 1 FROM run_idempotency_keys WHERE idempotency_key = ?",
                        arguments: [idempotencyKey]
                    ) == true
                {
                    throw TygerRunEngineError(.conflict, "The idempotency key was already used")
                }
                try db.execute(
                    sql: "INSERT INTO runs (created_at, status, run) VALUES (?, ?, '{}')",
                    arguments: [RunPosition.micros(now), (run.status ?? .pending).rawValue]
                )
                var stored = run
                stored.id = db.lastInsertedRowID
                stored.createdAt = now
                let written = try Self.write(stored, tags: run.tags, db: db)
                if let idempotencyKey {
                    try db.execute(
                        sql: "INSERT INTO run_idempotency_keys (idempotency_key, run_id) VALUES (?, ?)",
                        arguments: [idempotencyKey, written.id]
                    )
                }
                return written
            }
        }
    }

    func run(idempotencyKey: String) async throws -> Run? {
        try await storage {
            try await queue.read { db in
                try String.fetchOne(
                    db,
                    sql: """
                        SELECT r.run FROM runs r JOIN run_idempotency_keys k ON k.run_id = r.id
                        WHERE k.idempotency_key = ?
                        """,
                    arguments: [idempotencyKey]
                ).map { try decodeJSON(Run.self, $0) }
            }
        }
    }

    /// Writes `run` with `tags` and a fresh ETag; returns it as later reads will see it.
    private static func write(_ run: Run, tags: [String: String]?, db: Database) throws -> Run {
        guard let id = run.id else { preconditionFailure("writing a run without an id") }
        var stored = run
        stored.tags = tags
        stored = stored.withComputedETag
        let text = try encodeJSON(stored)
        try db.execute(
            sql: "UPDATE runs SET status = ?, run = ? WHERE id = ?",
            arguments: [(stored.status ?? .pending).rawValue, text, id]
        )
        try db.execute(sql: "DELETE FROM run_tags WHERE run_id = ?", arguments: [id])
        for (key, value) in tags ?? [:] {
            try db.execute(
                sql: "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
                arguments: [id, key, value]
            )
        }
        return try decodeJSON(Run.self, text)
    }

    private static func stored(id: Int64, db: Database) throws -> Run? {
        try String.fetchOne(db, sql: "SELECT run FROM runs WHERE id = ?", arguments: [id]).map {
            try decodeJSON(Run.self, $0)
        }
    }

    func get(id: Int64) async throws -> Run? {
        try await storage {
            try await queue.read { db in
                try String.fetchOne(db, sql: "SELECT run FROM runs WHERE id = ?", arguments: [id]).map {
                    try decodeJSON(Run.self, $0)
                }
            }
        }
    }

    @discardableResult
    func update(_ run: Run) async throws -> Run {
        guard let id = run.id else { preconditionFailure("updating a run without an id") }
        return try await storage {
            try await queue.write { db in
                let tags = try Self.stored(id: id, db: db)?.tags ?? run.tags
                return try Self.write(run, tags: tags, db: db)
            }
        }
    }

    func updateTags(id: Int64, tags: [String: String]?, ifMatch: String?) async throws -> Run {
        try await storage {
            try await queue.write { db in
                guard let current = try Self.stored(id: id, db: db) else {
                    throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage)
                }
                guard current.matches(ifMatch: ifMatch) else {
                    throw TygerRunEngineError(.preconditionFailed, "The ETag does not match")
                }
                return try Self.write(current, tags: tags, db: db)
            }
        }
    }

    private static func whereClause(
        since: Date?,
        statuses: Set<RunStatus>,
        tags: [String: String]
    ) -> (String, StatementArguments) {
        var clauses: [String] = ["1 = 1"]
        var arguments: StatementArguments = []
        if let since {
            clauses.append("created_at > ?")
            arguments += [RunPosition.micros(since)]
        }
        if !statuses.isEmpty {
            let list = statuses.map(\.rawValue).sorted()
            clauses.append("status IN (\(list.map { _ in "?" }.joined(separator: ", ")))")
            arguments += StatementArguments(list)
        }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            clauses.append("EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = runs.id AND t.key = ? AND t.value = ?)")
            arguments += [key, value]
        }
        return (clauses.joined(separator: " AND "), arguments)
    }

    func list(_ query: RunQuery) async throws -> [Run] {
        try await storage {
            try await queue.read { db in
                var (sql, arguments) = Self.whereClause(since: query.since, statuses: query.statuses, tags: query.tags)
                if let after = query.after {
                    sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
                    arguments += [after.createdAtMicros, after.createdAtMicros, after.id]
                }
                return try String.fetchAll(
                    db,
                    sql: "SELECT run FROM runs WHERE \(sql) ORDER BY created_at DESC, id DESC LIMIT ?",
                    arguments: arguments + [max(0, query.limit)]
                ).map { try decodeJSON(Run.self, $0) }
            }
        }
    }

    func counts(since: Date?, tags: [String: String]) async throws -> [RunStatus: Int] {
        try await storage {
            try await queue.read { db in
                let (sql, arguments) = Self.whereClause(since: since, statuses: [], tags: tags)
                var result: [RunStatus: Int] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: "SELECT status, COUNT(*) AS n FROM runs WHERE \(sql) GROUP BY status",
                    arguments: arguments
                ) {
                    if let status = RunStatus(rawValue: row["status"]) { result[status] = row["n"] }
                }
                return result
            }
        }
    }

    func nonTerminal() async throws -> [Run] {
        try await storage {
            try await queue.read { db in
                try String.fetchAll(
                    db,
                    sql: "SELECT run FROM runs WHERE status IN ('Pending', 'Running', 'Canceling') ORDER BY id"
                ).map { try decodeJSON(Run.self, $0) }
            }
        }
    }
}

/// Runs a database operation, turning GRDB errors into `.storage` errors.
func storage<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as TygerRunEngineError {
        throw error
    } catch {
        throw TygerRunEngineError(.storage, "run database error: \(error)", cause: error)
    }
}
