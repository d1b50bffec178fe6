import Foundation
public import Logging
import Testing
public import TygerPostgres

/// A logger for databases the tests open: the pool's retries are not the tests' output.
public let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()

/// A database of its own for one test, in the test cluster; its connections close when this goes.
public final class PostgresTestDatabase: Sendable {
    public static let adminURL: String? = ProcessInfo.processInfo.environment["TYGER_TEST_POSTGRES_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }

    public let database: PostgresDatabase
    public let url: String

    private init(database: PostgresDatabase, url: String) {
        self.database = database
        self.url = url
    }

    deinit { database.shutdown() }

    /// Creates a fresh database (`CREATE DATABASE` through `psql`) and opens it, migrated.
    public static func make() async throws -> PostgresTestDatabase {
        let url = try await createEmpty()
        return PostgresTestDatabase(database: try await PostgresDatabase(url: url, logger: quietLogger), url: url)
    }

    /// Creates a fresh, empty database (`CREATE DATABASE` through `psql`) and returns its URL.
    public static func createEmpty() async throws -> String {
        let admin = try #require(adminURL)
        let name = "tyger_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let created = try await runProcess(
            "/usr/bin/psql",
            [admin, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name)"]
        )
        try #require(created.exitCode == 0, "\(created)")
        return String(admin[..<admin.lastIndex(of: "/")!]) + "/" + name
    }
}

extension PostgresTestDatabase {
    /// A fresh database where the test cluster runs, else `nil`.
    public static func makeIfAvailable() async throws -> PostgresTestDatabase? {
        adminURL == nil ? nil : try await make()
    }
}
