import Foundation
import Logging
import Synchronization
import Testing
import TygerControlPlane
import TygerModel
import TygerPostgres
import TygerTestSupport

/// A wall clock the test moves by hand.
final class ManualWallClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by duration: Duration) {
        current.withLock { $0 = RFC3339.adding(duration, to: $0) }
    }

    var wallClock: WallClock { WallClock { [self] in self.now } }
}

/// The repository implementations every repository test runs against: PostgreSQL where `tools/test` started one
/// (`TYGER_TEST_POSTGRES_URL`).
enum RepositoryKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var available: [RepositoryKind] { PostgresTestDatabase.adminURL == nil ? [.inMemory, .sqlite] : allCases }

    /// Makes an empty repository; what it lives in (a directory, a database) lasts as long as the returned holder.
    func make() async throws -> (repository: any BufferRepository, directory: AnyObject?) {
        switch self {
        case .inMemory:
            return (InMemoryBufferRepository(), nil)
        case .sqlite:
            let dir = TemporaryDirectory()
            return (try SQLiteBufferRepository(directory: URL(fileURLWithPath: dir.path)), dir)
        case .postgres:
            let database = try await PostgresTestDatabase.make()
            return (PostgresBufferRepository(database: database.database), database)
        }
    }
}

/// A database of its own for one test, in the test cluster; its connections close when this goes.
final class PostgresTestDatabase: Sendable {
    static let adminURL: String? = ProcessInfo.processInfo.environment["TYGER_TEST_POSTGRES_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }

    let database: PostgresDatabase
    let url: String

    private init(database: PostgresDatabase, url: String) {
        self.database = database
        self.url = url
    }

    deinit { database.shutdown() }

    /// Creates a fresh database (`CREATE DATABASE` through `psql`) and opens it, migrated.
    static func make() async throws -> PostgresTestDatabase {
        let admin = try #require(adminURL)
        let name = "tyger_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let created = try await runProcess(
            "/usr/bin/psql",
            [admin, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name)"]
        )
        try #require(created.exitCode == 0, "\(created)")
        let url = String(admin[..<admin.lastIndex(of: "/")!]) + "/" + name
        return PostgresTestDatabase(database: try await PostgresDatabase(url: url, logger: quietLogger), url: url)
    }
}
