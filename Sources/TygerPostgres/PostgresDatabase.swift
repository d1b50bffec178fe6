import Foundation
public import Logging
import NIOSSL
public import PostgresNIO
import Synchronization
import TygerControlPlane
import TygerModel

/// A PostgreSQL database reached from a `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` URL, through a
/// PostgresNIO connection pool, with the control plane's schema applied.
///
/// Migrations are numbered, recorded in `tyger_migrations`, and applied at connection under a session advisory lock,
/// so servers that start together on one database apply each migration once.
public final class PostgresDatabase: Sendable {
    public let client: PostgresClient
    public let logger: Logger
    private let runner: Task<Void, Never>
    private let serverLockHolder = Mutex<Task<Void, Never>?>(nil)
    private let settings: Settings
    /// The connections made outside the pool that are still open, closed with the pool; `nil` once shut down.
    private let dedicated = Mutex<[ObjectIdentifier: PostgresConnection]?>([:])
    /// The URL without its password, for messages.
    public let redactedURL: String

    /// The settings of a `postgres://` URL.
    public struct Settings: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// A socket directory (`?host=/dir`): the server's socket `/dir/.s.PGSQL.PORT` instead of TCP.
        public var socketDirectory: String?
        public var user: String
        public var password: String?
        public var database: String
        /// `sslmode=require`: TLS, with the server's certificate verified.
        public var requireTLS: Bool

        /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require][&host=/socket/dir]`
        /// (`postgresql://` too).
        ///
        /// - Throws: ``TygerControlPlaneError`` `.invalidInput` naming what is wrong.
        public init(parsing text: String) throws {
            func bad(_ why: String) -> TygerControlPlaneError {
                TygerControlPlaneError(
                    code: .invalidInput,
                    message: "invalid database URL '\(PostgresDatabase.redact(text))': \(why) "
                        + "(expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
                )
            }
            guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
                let components = URLComponents(string: text)
            else { throw bad("not a postgres:// URL") }
            guard let user = components.user, !user.isEmpty else { throw bad("no user") }
            let database = String(components.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty, !database.contains("/") else { throw bad("no database name") }
            self.user = user
            self.password = components.password
            self.database = database
            self.host = components.host ?? ""
            self.port = components.port ?? 5432
            self.requireTLS = false
            for item in components.queryItems ?? [] {
                switch (item.name, item.value ?? "") {
                case ("sslmode", "disable"): requireTLS = false
                case ("sslmode", "require"), ("sslmode", "verify-full"): requireTLS = true
                case ("sslmode", let mode): throw bad("sslmode '\(mode)' is not supported: use disable or require")
                case ("host", let directory) where directory.hasPrefix("/"): socketDirectory = directory
                default: throw bad("unknown parameter '\(item.name)'")
                }
            }
            if host.isEmpty && socketDirectory == nil { throw bad("no host") }
        }
    }

    /// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
    public static func redact(_ text: String) -> String {
        guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"),
            let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
        else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }

    /// Connects (the pool opens connections as they are needed, retrying with backoff) and applies the migrations
    /// this version knows.
    ///
    /// - Parameter startTimeout: How long a database that cannot be reached (not started yet, say) is waited for.
    /// - Throws: ``TygerControlPlaneError`` `.invalidInput` for a bad URL, `.databaseFailure` when the database
    ///   cannot be reached within `startTimeout` or migrated.
    public init(url: String, logger: Logger, startTimeout: Duration = .seconds(60)) async throws {
        let settings = try Settings(parsing: url)
        var configuration: PostgresClient.Configuration
        let tls: PostgresClient.Configuration.TLS =
            settings.requireTLS ? .require(.makeClientConfiguration()) : .disable
        if let directory = settings.socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(directory)/.s.PGSQL.\(settings.port)",
                username: settings.user,
                password: settings.password,
                database: settings.database
            )
        } else {
            configuration = PostgresClient.Configuration(
                host: settings.host,
                port: settings.port,
                username: settings.user,
                password: settings.password,
                database: settings.database,
                tls: tls
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        self.settings = settings
        do {
            try await Self.preflight(settings, logger: logger)
        } catch {
            throw TygerControlPlaneError(
                code: .databaseFailure,
                message: "Cannot open the database \(Self.redact(url)): \(Self.describe(error))",
                cause: error
            )
        }
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let client = client
        runner = Task { await client.run() }
        self.logger = logger
        redactedURL = Self.redact(url)
        do {
            try await Self.within(startTimeout) { [self] in try await migrate() }
        } catch {
            runner.cancel()
            throw TygerControlPlaneError(
                code: .databaseFailure,
                message: "Cannot open the database \(redactedURL): \(Self.describe(error))",
                cause: error
            )
        }
    }

    /// How long a request waits for a connection before it is answered that the database cannot be reached (the
    /// pool goes on trying to connect, and later requests succeed as soon as it does).
    public static let leaseTimeout: Duration = .seconds(5)

    /// The database cannot be reached: no connection within ``leaseTimeout``, or the connection broke under a query.
    public struct Unavailable: Error, CustomStringConvertible {
        public let cause: any Error
        public var description: String { "the database cannot be reached (\(PostgresDatabase.describe(cause)))" }
    }

    /// Runs `body` on a pooled connection.
    ///
    /// - Throws: ``Unavailable`` when no connection comes within ``leaseTimeout`` or the connection breaks; what
    ///   `body` throws otherwise.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let client = client
        let leased = Lease()
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        leased.taken.store(true, ordering: .relaxed)
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: Self.leaseTimeout)
                    if !leased.taken.load(ordering: .relaxed) { throw TimedOut(after: Self.leaseTimeout) }
                    return nil
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let value = result { return value }
                }
                throw CancellationError()  // not reached: the first task returns a value or throws
            }
        } catch let error as TimedOut {
            throw Unavailable(cause: error)
        } catch let error as PSQLError where Self.isConnectionFailure(error) {
            throw Unavailable(cause: error)
        } catch let error as PostgresTransactionError
            where (error.beginError ?? error.closureError ?? error.commitError).map(Self.isConnectionFailure) ?? false
        {
            throw Unavailable(cause: error)
        }
    }

    /// Whether a request got its connection.
    private final class Lease: Sendable {
        let taken = Atomic(false)
    }

    /// Whether `error` says the connection, not the query, failed (closed, refused, or the server shutting down).
    static func isConnectionFailure(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown: return true
        case .server:
            // Class 08 (connection exception), 57P01-57P03 (shutting down, cannot connect now).
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
        default: return false
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        let after: Duration
        var description: String { "no connection within \(after)" }
    }

    /// Runs `body`, or throws ``TimedOut`` once `limit` has passed (the pool retries a connection for as long as it
    /// is asked to).
    ///
    /// The answer comes at the limit even when `body` is slow to notice that it was cancelled (a pool waiting for a
    /// connection took half a minute to): `body` is cancelled and left to end on its own.
    static func within(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let outcome = Outcome()
        let work = Task { try await body() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            outcome.pending.withLock { $0 = continuation }
            Task {
                do {
                    try await work.value
                    outcome.finish(.success(()))
                } catch { outcome.finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                work.cancel()
                outcome.finish(.failure(TimedOut(after: limit)))
            }
        }
    }

    /// The first answer of ``within(_:_:)``: the work's or the timer's.
    private final class Outcome: Sendable {
        let pending = Mutex<CheckedContinuation<Void, any Error>?>(nil)
        func finish(_ result: Result<Void, any Error>) {
            pending.withLock { continuation in
                continuation?.resume(with: result)
                continuation = nil
            }
        }
    }

    /// One connection made before the pool: a server that answers with an error (no such database, user or
    /// password) fails the start at once, where the pool would retry it until the start timeout. A server that
    /// cannot be reached yet is left to the pool's retries.
    private static func preflight(_ settings: Settings, logger: Logger) async throws {
        do {
            let connection = try await connect(settings, logger: logger)
            try await connection.close()
        } catch let error as PSQLError where error.serverInfo != nil {
            throw error
        } catch {
            // Not reachable (yet): the pool retries.
        }
    }

    /// A connection of its own, outside the pool (at most 10 s to make): for a session that lives as long as the
    /// server, such as ``PostgresRunCoordination``'s `LISTEN`, whose retries then leave the pool's backoff alone.
    /// It is closed by ``shutdown()`` if still open then.
    ///
    /// - Throws: ``Unavailable`` after ``shutdown()``; PostgresNIO's error when the database cannot be reached.
    public func dedicatedConnection() async throws -> PostgresConnection {
        guard !isShutDown else { throw Unavailable(cause: CancellationError()) }
        let connection = try await Self.connect(settings, logger: logger)
        let kept = dedicated.withLock { open -> Bool in
            guard open != nil else { return false }
            open?[ObjectIdentifier(connection)] = connection
            // Closed ones leave the set here: a long-lived server makes few, but never keeps the dead.
            open = open?.filter { !$0.value.isClosed }
            return true
        }
        if !kept {
            try? await connection.close()
            throw Unavailable(cause: CancellationError())
        }
        return connection
    }

    /// Whether ``shutdown()`` was called.
    public var isShutDown: Bool { dedicated.withLock { $0 == nil } }

    private static func connect(_ settings: Settings, logger: Logger) async throws -> PostgresConnection {
        var configuration: PostgresConnection.Configuration
        if let directory = settings.socketDirectory {
            configuration = PostgresConnection.Configuration(
                unixSocketPath: "\(directory)/.s.PGSQL.\(settings.port)",
                username: settings.user,
                password: settings.password,
                database: settings.database
            )
        } else {
            configuration = PostgresConnection.Configuration(
                host: settings.host,
                port: settings.port,
                username: settings.user,
                password: settings.password,
                database: settings.database,
                tls: settings.requireTLS
                    ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        return try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
    }

    /// Closes the pool's connections and those made outside it.
    public func shutdown() {
        serverLockHolder.withLock { $0?.cancel() }
        let open = dedicated.withLock { open -> [PostgresConnection] in
            defer { open = nil }
            return Array((open ?? [:]).values)
        }
        for connection in open { let _: EventLoopFuture<Void> = connection.close() }
        runner.cancel()
    }

    /// The key of the advisory lock a server holds on its database ("tygsrv" in ASCII).
    static let serverLock: Int64 = 0x7479_6773_7276

    /// Takes the database for this server: a session advisory lock held on one connection until ``shutdown()``,
    /// exclusive (a server whose buffers are on its own disk) or shared (servers whose buffers live in a shared
    /// store, which divide the runs through ``PostgresRunEngineStore``'s coordination).
    ///
    /// The lock lives as long as its connection: the connection is checked every ``lockCheckInterval``, and when it
    /// breaks (the database restarted, the network cut) the lock is taken again on a new one as soon as the database
    /// answers. When another server took it meanwhile in a conflicting mode, `onLost` is called and the lock is not
    /// held any more.
    ///
    /// - Returns: false when another server holds it in a conflicting mode.
    public func takeForThisServer(
        exclusive: Bool = true,
        onLost: @escaping @Sendable () -> Void = {}
    ) async throws -> Bool {
        let query: PostgresQuery =
            exclusive
            ? "SELECT pg_try_advisory_lock(\(Self.serverLock)), pg_backend_pid()"
            : "SELECT pg_try_advisory_lock_shared(\(Self.serverLock)), pg_backend_pid()"
        // The first attempt answers the caller; later ones (after the connection broke) keep the lock or give up.
        guard let first = try await holdLock(query) else { return false }
        let holder = Task {
            var held: (backend: Int32, task: Task<Void, Never>)? = first
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.lockCheckInterval)
                if Task.isCancelled { break }
                if let current = held {
                    // A query on a connection that broke can wait for ever: the lock's session is checked from
                    // another connection instead.
                    guard (try? await self.sessionIsAlive(current.backend)) == false else { continue }
                    current.task.cancel()
                    held = nil
                    logger.warning("the connection holding the database's server lock broke; taking it again")
                }
                do {
                    guard let again = try await self.holdLock(query) else {
                        logger.critical(
                            "another tyger-server took the database while this one was cut off from it; stopping"
                        )
                        onLost()
                        return
                    }
                    held = again
                    logger.info("took the database's server lock again after its connection broke")
                } catch {
                    continue  // not reachable yet
                }
            }
            held?.task.cancel()
        }
        serverLockHolder.withLock { $0 = holder }
        return true
    }

    /// Takes the server lock with `query` on a connection kept until the returned task is cancelled; `nil` when
    /// another server holds it.
    private func holdLock(_ query: PostgresQuery) async throws -> (backend: Int32, task: Task<Void, Never>)? {
        let (answers, answer) = AsyncStream<Result<(Bool, Int32), any Error>>.makeStream()
        let client = client
        let logger = logger
        let task = Task {
            do {
                try await client.withConnection { connection in
                    var result = (false, Int32(0))
                    for try await row in try await connection.query(query, logger: logger).decode((Bool, Int32).self) {
                        result = row
                    }
                    answer.yield(.success(result))
                    guard result.0 else { return }
                    while true { try await Task.sleep(for: .seconds(3600)) }
                }
            } catch {
                answer.yield(.failure(error))
            }
        }
        for await result in answers {
            let (taken, backend) = try result.get()
            if !taken { return nil }
            return (backend, task)
        }
        return nil
    }

    /// Whether the database session `backend` still exists.
    private func sessionIsAlive(_ backend: Int32) async throws -> Bool {
        try await withConnection { connection in
            var alive = false
            for try await value in try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = \(backend))",
                logger: self.logger
            ).decode(Bool.self) {
                alive = value
            }
            return alive
        }
    }

    /// How often the connection holding the server lock is checked.
    static let lockCheckInterval: Duration = .seconds(2)

    /// A one-line reason for a database error (the server's message when it sent one).
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }

    // MARK: Migrations

    /// The schema, oldest first: an identifier and its statements. Timestamps are BIGINT microseconds since the
    /// Unix epoch (UTC), as in SQLite, so ordering and continuation cursors are exact.
    static let migrations: [(id: String, statements: [String])] = [
        (
            "v1-buffers",
            [
                """
                CREATE TABLE buffers (
                    id TEXT NOT NULL PRIMARY KEY,
                    location TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    is_soft_deleted BOOLEAN NOT NULL DEFAULT FALSE,
                    expires_at BIGINT
                )
                """,
                "CREATE INDEX buffers_listing ON buffers (is_soft_deleted, created_at DESC, id DESC)",
                """
                CREATE TABLE buffer_tags (
                    buffer_id TEXT NOT NULL REFERENCES buffers (id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (buffer_id, key)
                )
                """,
                "CREATE INDEX buffer_tags_key_value ON buffer_tags (key, value, buffer_id)",
                "CREATE INDEX buffers_expiry ON buffers (is_soft_deleted, expires_at) WHERE expires_at IS NOT NULL",
                """
                CREATE TABLE buffer_writer_leases (
                    buffer_id TEXT NOT NULL PRIMARY KEY,
                    lease_id TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'failed')),
                    expires_at BIGINT NOT NULL
                )
                """,
            ]
        ),
        (
            "v2-codespecs-runs",
            [
                """
                CREATE TABLE codespecs (
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    created_at BIGINT NOT NULL,
                    spec TEXT NOT NULL,
                    PRIMARY KEY (name, version)
                )
                """,
                """
                CREATE TABLE runs (
                    id BIGSERIAL PRIMARY KEY,
                    created_at BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    run TEXT NOT NULL
                )
                """,
                "CREATE INDEX runs_created ON runs (created_at DESC, id DESC)",
                "CREATE INDEX runs_status ON runs (status)",
                """
                CREATE TABLE run_tags (
                    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (run_id, key)
                )
                """,
                "CREATE INDEX run_tags_key_value ON run_tags (key, value)",
                """
                CREATE TABLE run_idempotency_keys (
                    idempotency_key TEXT PRIMARY KEY,
                    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE
                )
                """,
            ]
        ),
        (
            // Several servers on one database: the server supervising each run, the servers' heartbeats, and the
            // cancel requests one server passes to another. Runs from before have no owner ('').
            "v3-run-owners",
            [
                "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
                "CREATE INDEX runs_live_owner ON runs (owner) WHERE status IN ('Pending', 'Running', 'Canceling')",
                "CREATE TABLE tyger_servers (instance TEXT PRIMARY KEY, heartbeat_at BIGINT NOT NULL)",
                """
                CREATE TABLE run_cancel_requests (
                    run_id BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
                    requested_at BIGINT NOT NULL
                )
                """,
            ]
        ),
        (
            // Run logs where every server reaches them: the owner ships its log file in pieces as it grows.
            "v4-run-logs",
            [
                """
                CREATE TABLE run_log_pieces (
                    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    start_offset BIGINT NOT NULL,
                    bytes BYTEA NOT NULL,
                    PRIMARY KEY (run_id, start_offset)
                )
                """
            ]
        ),
        (
            // What servers sharing a database must agree on to serve the same users: the bearer tokens (hashes
            // only) and the keys that sign access URLs.
            "v5-tokens-keys",
            [
                """
                CREATE TABLE access_tokens (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    sha256 TEXT NOT NULL UNIQUE
                )
                """,
                "CREATE TABLE signing_keys (role TEXT PRIMARY KEY, pem TEXT NOT NULL)",
            ]
        ),
        (
            // Where each server is reached: the relays of a run's ephemeral buffers are on its owner.
            "v6-server-endpoints",
            ["ALTER TABLE tyger_servers ADD COLUMN endpoint TEXT NOT NULL DEFAULT ''"]
        ),
    ]

    /// The key of the advisory lock held while migrating (any constant: "tyger" in ASCII).
    static let migrationLock: Int64 = 0x7479_6765_72

    /// Applies the migrations not yet recorded, each in a transaction, under the advisory lock.
    private func migrate() async throws {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
            do {
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS tyger_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                    logger: logger
                )
                var applied = Set<String>()
                for try await id in try await connection.query("SELECT id FROM tyger_migrations", logger: logger)
                    .decode(String.self)
                {
                    applied.insert(id)
                }
                for migration in Self.migrations where !applied.contains(migration.id) {
                    try await connection.withTransaction(logger: logger) { transaction in
                        for statement in migration.statements {
                            try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        let now = RFC3339.micros(Date())
                        try await transaction.query(
                            "INSERT INTO tyger_migrations (id, applied_at) VALUES (\(migration.id), \(now))",
                            logger: logger
                        )
                    }
                    logger.info("applied database migration", metadata: ["migration": "\(migration.id)"])
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
        }
    }

    /// The migrations recorded in the database, in the order they were applied.
    public func appliedMigrations() async throws -> [String] {
        var ids: [String] = []
        for try await id in try await client.query(
            "SELECT id FROM tyger_migrations ORDER BY applied_at, id",
            logger: logger
        ).decode(String.self) {
            ids.append(id)
        }
        return ids
    }
}

/// The values bound to a query written as text: ``bind(_:)`` appends one and returns its placeholder (`$1`, `$2`, …
/// in the order bound), ``query(_:)`` pairs the text with them.
struct BoundValues {
    private var bindings = PostgresBindings()

    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T?) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}
