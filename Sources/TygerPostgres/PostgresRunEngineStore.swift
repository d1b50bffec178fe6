public import Foundation
import Logging
import NIOCore
import PostgresNIO
public import TygerModel
public import TygerRunEngine

/// The run engine's codespecs and runs on PostgreSQL, for servers that share one database: the same tables and
/// rules as `SQLiteRunEngineStore` (JSON documents plus the columns queries need). Codespec versions and run
/// idempotency keys are decided under transaction-scoped advisory locks, so two servers creating the same codespec
/// or retrying the same run creation agree on one result.
public final class PostgresRunEngineStore: RunEngineStore {
    public let codespecs: any CodespecRepository
    public let runs: any RunRepository
    public let coordination: (any RunCoordination)?

    /// - Parameter instance: The instance ID of the server this store serves: runs it creates are owned by that
    ///   server, and the store coordinates with the other servers on the database. `nil` for a store used alone
    ///   (tests of the repositories).
    public init(database: PostgresDatabase, instance: String? = nil) {
        codespecs = PostgresCodespecRepository(database: database)
        runs = PostgresRunRepository(database: database, owner: instance ?? "")
        coordination = instance.map { PostgresRunCoordination(database: database, instance: $0) }
    }
}

/// Runs `body` on a pooled connection (in a transaction when `transaction`), turning database errors into
/// `.storage` errors.
func storage<T: Sendable>(
    _ database: PostgresDatabase,
    transaction: Bool = false,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
) async throws -> T {
    let logger = database.logger
    do {
        return try await database.withConnection { connection in
            if transaction {
                return try await connection.withTransaction(logger: logger) { try await body($0) }
            }
            return try await body(connection)
        }
    } catch let error as TygerRunEngineError {
        throw error
    } catch let error as PostgresDatabase.Unavailable {
        throw TygerRunEngineError(.unavailable, "The database cannot be reached; try again later.", cause: error)
    } catch let error as PostgresTransactionError {
        if let closure = error.closureError as? TygerRunEngineError { throw closure }
        throw TygerRunEngineError(.storage, "run database error: \(PostgresDatabase.describe(error))", cause: error)
    } catch {
        throw TygerRunEngineError(.storage, "run database error: \(PostgresDatabase.describe(error))", cause: error)
    }
}

private func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down)) }

private func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try TygerJSON.makeEncoder().encode(value), as: UTF8.self)
}

private func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try TygerJSON.makeDecoder().decode(T.self, from: Data(text.utf8))
}

private func strings(_ rows: PostgresRowSequence) async throws -> [String] {
    var values: [String] = []
    for try await value in rows.decode(String.self) { values.append(value) }
    return values
}

final class PostgresCodespecRepository: CodespecRepository {
    let database: PostgresDatabase
    init(database: PostgresDatabase) { self.database = database }
    private var logger: Logger { database.logger }

    func upsert(name: String, spec: Codespec, now: Date) async throws -> Codespec {
        try await storage(database, transaction: true) { connection in
            // Two servers adding a version of one name take turns.
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext('codespec:' || \(name)))",
                logger: self.logger
            )
            let latestText = try await strings(
                connection.query(
                    "SELECT spec FROM codespecs WHERE name = \(name) ORDER BY version DESC LIMIT 1",
                    logger: self.logger
                )
            ).first
            let latest = try latestText.map { try decodeJSON(Codespec.self, $0) }
            let stored: Codespec
            switch CodespecUpsert(name: name, spec: spec, latest: latest, now: now) {
            case .existing(let unchanged): return unchanged
            case .next(let next): stored = next
            }
            let next = stored.version ?? 1
            let text = try encodeJSON(stored)
            try await connection.query(
                "INSERT INTO codespecs (name, version, created_at, spec) VALUES (\(name), \(next), \(micros(now)), \(text))",
                logger: self.logger
            )
            return try decodeJSON(Codespec.self, text)  // as later reads will see it
        }
    }

    func latest(name: String) async throws -> Codespec? {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    "SELECT spec FROM codespecs WHERE name = \(name) ORDER BY version DESC LIMIT 1",
                    logger: self.logger
                )
            ).first.map { try decodeJSON(Codespec.self, $0) }
        }
    }

    func get(name: String, version: Int) async throws -> Codespec? {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    "SELECT spec FROM codespecs WHERE name = \(name) AND version = \(version)",
                    logger: self.logger
                )
            ).first.map { try decodeJSON(Codespec.self, $0) }
        }
    }

    func list(prefix: String?, limit: Int, after: String?) async throws -> [Codespec] {
        try await storage(database) { connection in
            let prefix = prefix ?? ""
            let after = after ?? ""
            // `COLLATE "C"`: byte order, as SQLite's BINARY.
            return try await strings(
                connection.query(
                    """
                    SELECT c.spec FROM codespecs c
                    WHERE c.version = (SELECT MAX(version) FROM codespecs WHERE name = c.name)
                    AND left(c.name, \(Int32(prefix.unicodeScalars.count))) = \(prefix) AND c.name COLLATE "C" > \(after) COLLATE "C"
                    ORDER BY c.name COLLATE "C" LIMIT \(max(0, limit))
                    """,
                    logger: self.logger
                )
            ).map { try decodeJSON(Codespec.self, $0) }
        }
    }
}

final class PostgresRunRepository: RunRepository {
    let database: PostgresDatabase
    /// The server that supervises the runs this repository creates ('' when none is named).
    let owner: String
    init(database: PostgresDatabase, owner: String) {
        self.database = database
        self.owner = owner
    }
    private var logger: Logger { database.logger }

    func create(_ run: Run, now: Date, idempotencyKey: String?) async throws -> Run {
        try await storage(database, transaction: true) { connection in
            if let idempotencyKey {
                // A retried creation on another server waits for the first one's transaction, then finds its key.
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext('run-key:' || \(idempotencyKey)))",
                    logger: self.logger
                )
                let used = try await connection.query(
                    "SELECT 1 FROM run_idempotency_keys WHERE idempotency_key = \(idempotencyKey)",
                    logger: self.logger
                )
                for try await _ in used {
                    throw TygerRunEngineError(.conflict, "The idempotency key was already used")
                }
            }
            let status = (run.status ?? .pending).rawValue
            let rows = try await connection.query(
                """
                INSERT INTO runs (created_at, status, run, owner) VALUES (\(micros(now)), \(status), '{}', \(self.owner))
                RETURNING id
                """,
                logger: self.logger
            )
            var id: Int64 = 0
            for try await value in rows.decode(Int64.self) { id = value }
            var stored = run
            stored.id = id
            stored.createdAt = now
            let written = try await Self.write(stored, tags: run.tags, connection, self.logger)
            if let idempotencyKey {
                try await connection.query(
                    "INSERT INTO run_idempotency_keys (idempotency_key, run_id) VALUES (\(idempotencyKey), \(id))",
                    logger: self.logger
                )
            }
            return written
        }
    }

    func run(idempotencyKey: String) async throws -> Run? {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    """
                    SELECT r.run FROM runs r JOIN run_idempotency_keys k ON k.run_id = r.id
                    WHERE k.idempotency_key = \(idempotencyKey)
                    """,
                    logger: self.logger
                )
            ).first.map { try decodeJSON(Run.self, $0) }
        }
    }

    /// Writes `run` with `tags` and a fresh ETag; returns it as later reads will see it.
    private static func write(
        _ run: Run,
        tags: [String: String]?,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Run {
        guard let id = run.id else { preconditionFailure("writing a run without an id") }
        var stored = run
        stored.tags = tags
        stored = stored.withComputedETag
        let text = try encodeJSON(stored)
        let status = (stored.status ?? .pending).rawValue
        try await connection.query("UPDATE runs SET status = \(status), run = \(text) WHERE id = \(id)", logger: logger)
        try await connection.query("DELETE FROM run_tags WHERE run_id = \(id)", logger: logger)
        if let tags, !tags.isEmpty {
            let keys = tags.keys.sorted()
            let values = keys.map { tags[$0]! }
            try await connection.query(
                "INSERT INTO run_tags (run_id, key, value) SELECT \(id), * FROM unnest(\(keys)::text[], \(values)::text[])",
                logger: logger
            )
        }
        try await PostgresRunCoordination.notify(.runChanged(id), connection, logger)  // sent when it commits
        return try decodeJSON(Run.self, text)
    }

    private static func stored(
        id: Int64,
        forUpdate: Bool,
        _ connection: PostgresConnection,
        _ logger: Logger
    )
        async throws -> Run?
    {
        try await strings(
            connection.query(
                "SELECT run FROM runs WHERE id = \(id) \(unescaped: forUpdate ? "FOR UPDATE" : "")",
                logger: logger
            )
        ).first.map { try decodeJSON(Run.self, $0) }
    }

    func get(id: Int64) async throws -> Run? {
        try await storage(database) { connection in
            try await Self.stored(id: id, forUpdate: false, connection, self.logger)
        }
    }

    @discardableResult
    func update(_ run: Run) async throws -> Run {
        guard let id = run.id else { preconditionFailure("updating a run without an id") }
        return try await storage(database, transaction: true) { connection in
            if !self.owner.isEmpty {
                // Fenced: a server whose run another server took over (it was silent too long) writes nothing more.
                let owners = try await strings(
                    connection.query("SELECT owner FROM runs WHERE id = \(id) FOR UPDATE", logger: self.logger)
                )
                if let owner = owners.first, owner != self.owner {
                    throw TygerRunEngineError(.conflict, "The run was taken over by another server (instance \(owner))")
                }
            }
            let tags = try await Self.stored(id: id, forUpdate: true, connection, self.logger)?.tags ?? run.tags
            return try await Self.write(run, tags: tags, connection, self.logger)
        }
    }

    func updateTags(id: Int64, tags: [String: String]?, ifMatch: String?) async throws -> Run {
        try await storage(database, transaction: true) { connection in
            guard let current = try await Self.stored(id: id, forUpdate: true, connection, self.logger) else {
                throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage)
            }
            guard current.matches(ifMatch: ifMatch) else {
                throw TygerRunEngineError(.preconditionFailed, "The ETag does not match")
            }
            return try await Self.write(current, tags: tags, connection, self.logger)
        }
    }

    /// The conditions of a run query, their values bound to `values`.
    private static func conditions(
        since: Date?,
        statuses: Set<RunStatus>,
        tags: [String: String],
        values: inout BoundValues
    ) -> String {
        var clauses = ["TRUE"]
        if let since { clauses.append("created_at > \(values.bind(micros(since)))") }
        if !statuses.isEmpty { clauses.append("status = ANY(\(values.bind(statuses.map(\.rawValue).sorted())))") }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            clauses.append(
                "EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = runs.id AND t.key = \(values.bind(key)) "
                    + "AND t.value = \(values.bind(value)))"
            )
        }
        return clauses.joined(separator: " AND ")
    }

    func list(_ query: RunQuery) async throws -> [Run] {
        try await storage(database) { connection in
            var values = BoundValues()
            var sql = Self.conditions(since: query.since, statuses: query.statuses, tags: query.tags, values: &values)
            if let after = query.after {
                let created = values.bind(after.createdAtMicros)
                sql += " AND (created_at < \(created) OR (created_at = \(created) AND id < \(values.bind(after.id))))"
            }
            let text =
                "SELECT run FROM runs WHERE \(sql) ORDER BY created_at DESC, id DESC LIMIT \(values.bind(max(0, query.limit)))"
            return try await strings(connection.query(values.query(text), logger: self.logger))
                .map { try decodeJSON(Run.self, $0) }
        }
    }

    func counts(since: Date?, tags: [String: String]) async throws -> [RunStatus: Int] {
        try await storage(database) { connection in
            var values = BoundValues()
            let sql = Self.conditions(since: since, statuses: [], tags: tags, values: &values)
            let rows = try await connection.query(
                values.query("SELECT status, COUNT(*) FROM runs WHERE \(sql) GROUP BY status"),
                logger: self.logger
            )
            var result: [RunStatus: Int] = [:]
            for try await (status, count) in rows.decode((String, Int64).self) {
                if let status = RunStatus(rawValue: status) { result[status] = Int(count) }
            }
            return result
        }
    }

    func nonTerminal() async throws -> [Run] {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    "SELECT run FROM runs WHERE status IN ('Pending', 'Running', 'Canceling') ORDER BY id",
                    logger: self.logger
                )
            ).map { try decodeJSON(Run.self, $0) }
        }
    }
}

/// ``RunCoordination`` on the shared database: `runs.owner`, `tyger_servers` heartbeats, `run_cancel_requests`,
/// and notices of changes on the `tyger_runs` channel (`NOTIFY` when a change commits, `LISTEN` on a connection
/// of its own).
final class PostgresRunCoordination: RunCoordination {
    let database: PostgresDatabase
    let instance: String
    init(database: PostgresDatabase, instance: String) {
        self.database = database
        self.instance = instance
    }
    private var logger: Logger { database.logger }

    /// The channel of the change notices.
    static let channel = "tyger_runs"

    /// Sends the notice of `change`: at once, or when the transaction `connection` is in commits.
    static func notify(_ change: CoordinationChange, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(channel), \(change.payload))", logger: logger)
    }

    var notifies: Bool { true }

    /// Listens on a connection of its own (outside the pool, so that a long-lived `LISTEN` takes none of the pool's
    /// connections and its reconnections none of the pool's backoff), made again after 250 ms, doubling up to 5 s
    /// while the database cannot be reached.
    func listen(_ changed: @escaping @Sendable (CoordinationChange) -> Void) async {
        let database = database
        let logger = logger
        var pause = Duration.milliseconds(250)
        while !Task.isCancelled && !database.isShutDown {
            do {
                let connection = try await database.dedicatedConnection()
                pause = .milliseconds(250)
                await withTaskCancellationHandler {
                    do {
                        try await connection.listen(on: Self.channel) { notices in
                            logger.debug(
                                "listening for changes of other servers",
                                metadata: ["channel": "\(Self.channel)"]
                            )
                            for try await notice in notices {
                                if let change = CoordinationChange(payload: notice.payload) { changed(change) }
                            }
                        }
                    } catch {
                        // Notices sent meanwhile are lost: the followers' own looks catch up.
                        logger.debug("listening for changes stopped", metadata: ["error": "\(error)"])
                    }
                } onCancel: {
                    let _: EventLoopFuture<Void> = connection.close()
                }
                try? await connection.close()
            } catch {
                logger.debug("cannot listen for changes yet", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { return }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    func heartbeat(now: Date, endpoint: String?) async throws {
        let endpoint = endpoint ?? ""
        try await storage(database) { connection in
            try await connection.query(
                """
                INSERT INTO tyger_servers (instance, heartbeat_at, endpoint)
                VALUES (\(self.instance), \(micros(now)), \(endpoint))
                ON CONFLICT (instance) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, endpoint = EXCLUDED.endpoint
                """,
                logger: self.logger
            )
        }
    }

    func ownerEndpoint(ofRun id: Int64, staleBefore: Date) async throws -> String? {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    """
                    SELECT s.endpoint FROM runs r JOIN tyger_servers s ON s.instance = r.owner
                    WHERE r.id = \(id) AND r.owner <> \(self.instance) AND s.heartbeat_at >= \(micros(staleBefore))
                        AND s.endpoint <> ''
                    """,
                    logger: self.logger
                )
            ).first
        }
    }

    func ownedNonTerminal() async throws -> [Run] {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    """
                    SELECT run FROM runs
                    WHERE status IN ('Pending', 'Running', 'Canceling') AND owner = \(self.instance) ORDER BY id
                    """,
                    logger: self.logger
                )
            ).map { try decodeJSON(Run.self, $0) }
        }
    }

    func claimAbandoned(staleBefore: Date) async throws -> [(run: Run, previousOwner: String)] {
        // Rows another server is claiming at the same moment are skipped (SKIP LOCKED): each run goes to one server.
        // An owner with no heartbeat row ('' for runs from before owners, or a server that never beat) is stale.
        try await storage(database, transaction: true) { connection in
            let rows = try await connection.query(
                """
                WITH stale AS (
                    SELECT r.id, r.owner FROM runs r LEFT JOIN tyger_servers s ON s.instance = r.owner
                    WHERE r.status IN ('Pending', 'Running', 'Canceling') AND r.owner <> \(self.instance)
                        AND (s.instance IS NULL OR s.heartbeat_at < \(micros(staleBefore)))
                    ORDER BY r.id
                    FOR UPDATE OF r SKIP LOCKED
                )
                UPDATE runs SET owner = \(self.instance) FROM stale WHERE runs.id = stale.id
                RETURNING runs.run, stale.owner
                """,
                logger: self.logger
            )
            var claimed: [(run: Run, previousOwner: String)] = []
            for try await (text, owner) in rows.decode((String, String).self) {
                claimed.append((try decodeJSON(Run.self, text), owner))
            }
            return claimed
        }
    }

    func liveOtherOwner(ofRun id: Int64, staleBefore: Date) async throws -> String? {
        try await storage(database) { connection in
            try await strings(
                connection.query(
                    """
                    SELECT r.owner FROM runs r JOIN tyger_servers s ON s.instance = r.owner
                    WHERE r.id = \(id) AND r.owner <> \(self.instance) AND s.heartbeat_at >= \(micros(staleBefore))
                    """,
                    logger: self.logger
                )
            ).first
        }
    }

    func requestCancel(runId: Int64, now: Date) async throws {
        try await storage(database) { connection in
            try await connection.query(
                """
                INSERT INTO run_cancel_requests (run_id, requested_at) VALUES (\(runId), \(micros(now)))
                ON CONFLICT (run_id) DO NOTHING
                """,
                logger: self.logger
            )
            try await Self.notify(.cancelRequested(runId), connection, self.logger)
        }
    }

    func appendLog(runId: Int64, offset: Int64, bytes: [UInt8]) async throws {
        try await storage(database) { connection in
            try await connection.query(
                """
                INSERT INTO run_log_pieces (run_id, start_offset, bytes) VALUES (\(runId), \(offset), \(ByteBuffer(bytes: bytes)))
                ON CONFLICT (run_id, start_offset) DO NOTHING
                """,
                logger: self.logger
            )
            try await Self.notify(.logAppended(runId), connection, self.logger)
        }
    }

    func log(runId: Int64, from offset: Int64, limit: Int) async throws -> [UInt8] {
        try await storage(database) { connection in
            var out: [UInt8] = []
            var next = offset
            // Pieces start where the previous one ended; one that starts before `offset` is cut.
            for try await (start, bytes) in try await connection.query(
                """
                SELECT start_offset, bytes FROM run_log_pieces
                WHERE run_id = \(runId) AND start_offset + length(bytes) > \(offset)
                ORDER BY start_offset
                """,
                logger: self.logger
            ).decode((Int64, ByteBuffer).self) {
                guard start <= next, out.count < limit else { break }
                let piece = bytes.getBytes(at: bytes.readerIndex, length: bytes.readableBytes) ?? []
                let skip = Int(next - start)
                guard skip < piece.count else { continue }
                out += piece[skip...]
                next = start + Int64(piece.count)
            }
            return out
        }
    }

    func takenOver(among ids: [Int64]) async throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        return try await storage(database) { connection in
            var taken: [Int64] = []
            for try await id in try await connection.query(
                "SELECT id FROM runs WHERE id = ANY(\(ids)) AND owner <> \(self.instance)",
                logger: self.logger
            ).decode(Int64.self) {
                taken.append(id)
            }
            return taken
        }
    }

    func takeCancelRequests() async throws -> [Int64] {
        try await storage(database) { connection in
            var ids: [Int64] = []
            for try await id in try await connection.query(
                """
                DELETE FROM run_cancel_requests c USING runs r
                WHERE c.run_id = r.id AND r.owner = \(self.instance)
                RETURNING c.run_id
                """,
                logger: self.logger
            ).decode(Int64.self) {
                ids.append(id)
            }
            return ids
        }
    }
}
