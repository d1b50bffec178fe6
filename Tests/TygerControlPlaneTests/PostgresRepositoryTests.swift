import Foundation
import Logging
import Testing
import TygerControlPlane
import TygerModel
import TygerPostgres
import TygerTestSupport

/// What only a shared database has: several servers (here, several clients with pools of their own) on one
/// database, and the URL handling. The behaviour every repository shares is in `BufferRepositoryTests`.
@Suite(.enabled(if: PostgresTestDatabase.adminURL != nil))
struct PostgresRepositoryTests {
    /// Servers starting together on one database apply each migration once, under the advisory lock.
    @Test func serversStartingTogetherMigrateOnce() async throws {
        let first = try await PostgresTestDatabase.make()
        let url = first.url
        let others = try await withThrowingTaskGroup(of: PostgresDatabase.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresDatabase(url: url, logger: quietLogger) } }
            var all: [PostgresDatabase] = []
            for try await database in group { all.append(database) }
            return all
        }
        defer { for database in others { database.shutdown() } }
        #expect(
            try await first.database.appliedMigrations() == [
                "v1-buffers", "v2-codespecs-runs", "v3-run-owners", "v4-run-logs", "v5-tokens-keys",
                "v6-server-endpoints",
            ]
        )
    }

    /// Two servers taking the writer lease of one buffer at the same moment: exactly one gets it, many times over.
    @Test func twoServersRacingForAWriterLeaseHaveOneWinner() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let repositories = [PostgresBufferRepository(database: one.database), PostgresBufferRepository(database: two)]
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for round in 0..<20 {
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (i, repository) in repositories.enumerated() {
                    group.addTask {
                        let outcome = try await repository.changeWriterLease(
                            bufferId: "buffer-\(round)",
                            leaseId: "writer-\(i)",
                            .acquire(until: now + 60),
                            now: now
                        )
                        if case .granted = outcome { return true }
                        return false
                    }
                }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            #expect(granted == 1, "round \(round): \(granted) writers got the lease")
        }
    }

    /// A change made through one server is what the other reads: one database, not copies.
    @Test func whatOneServerWritesTheOtherReads() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let a = PostgresBufferRepository(database: one.database)
        let b = PostgresBufferRepository(database: two)
        let record = BufferRecord(id: "shared", location: "local", createdAt: Date(), tags: ["k": "v"])
        try await a.create(record)
        let seen = try #require(try await b.get(id: "shared", softDeleted: false))
        #expect(seen.tags == ["k": "v"])
        let outcome = try await b.update(
            id: "shared",
            softDeleted: false,
            ifMatch: seen.eTag,
            expiresAt: nil,
            tags: [:]
        )
        guard case .changed = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(try await a.get(id: "shared", softDeleted: false)?.tags == [:])
        // The first server's ETag is stale now.
        let stale = try await a.update(id: "shared", softDeleted: false, ifMatch: seen.eTag, expiresAt: nil, tags: [:])
        guard case .eTagMismatch = stale else {
            Issue.record("a stale ETag was accepted: \(stale)")
            return
        }
    }

    @Test(arguments: [
        "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h/db?sslmode=allow",
        "postgres://u@h/db?colour=red", "postgres://u@/db",
    ])
    func badURLsAreRefusedNamingWhatIsWrong(url: String) async {
        await #expect(throws: TygerControlPlaneError.self) {
            _ = try await PostgresDatabase(url: url, logger: quietLogger)
        }
    }

    @Test func urlsParseAndPasswordsStayOutOfMessages() throws {
        let settings = try PostgresDatabase.Settings(
            parsing: "postgres://tyger:s3cret@db.example:6543/control?sslmode=require"
        )
        #expect(settings.host == "db.example")
        #expect(settings.port == 6543)
        #expect(settings.user == "tyger")
        #expect(settings.password == "s3cret")
        #expect(settings.database == "control")
        #expect(settings.requireTLS)
        let socket = try PostgresDatabase.Settings(parsing: "postgres://tyger@/control?host=/run/postgresql")
        #expect(socket.socketDirectory == "/run/postgresql")
        #expect(PostgresDatabase.redact("postgres://tyger:s3cret@db/control") == "postgres://tyger:***@db/control")
    }

    /// A database that is not there: one clear error naming it once the start timeout has passed.
    @Test func anUnreachableDatabaseIsAClearError() async throws {
        let started = ContinuousClock.now
        let error = await #expect(throws: TygerControlPlaneError.self) {
            _ = try await PostgresDatabase(
                url: "postgres://tyger@127.0.0.1:1/none",
                logger: quietLogger,
                startTimeout: .seconds(3)
            )
        }
        #expect(error?.code == .databaseFailure)
        #expect(error?.message.contains("postgres://tyger@127.0.0.1:1/none") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
