import Foundation
import Testing
import TygerTestSupport

/// `tyger-server run --database postgres://…`: the run-engine CLI tests run on it (`TestExecutor.postgres`); these
/// cover what only a database server has.
@Suite(.timeLimit(.minutes(2)), .enabled(if: PostgresTestDatabase.adminURL != nil))
struct DatabaseCLITests {
    /// A second server on a database another server uses is refused at start, naming the database: several
    /// servers on one database are not supported yet.
    @Test func aSecondServerOnOneDatabaseIsRefused() async throws {
        let url = try await PostgresTestDatabase.createEmpty()
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            try await withServer(dataDirectory: dir + "/one", arguments: ["--database", url]) { _ in
                let second = try await TygerServerBinary.run(
                    ["run", "--data-dir", dir + "/two", "--database", url],
                    timeout: .seconds(60)
                )
                #expect(second.exitCode == 1, "\(second)")
                #expect(second.stderrText.contains("another tyger-server uses the database"), "\(second)")
            }
        }
    }

    /// A database URL that is malformed, or names a database that is not there: one line, exit 1, no server.
    @Test func badDatabasesStopTheServerWithOneLine() async throws {
        let admin = try #require(PostgresTestDatabase.adminURL)
        let missing = String(admin[..<admin.lastIndex(of: "/")!]) + "/no_such_database"
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            for (url, message) in [
                ("mysql://u@h/db", "invalid database URL"),
                (missing, "no_such_database"),
            ] {
                let started = ContinuousClock.now
                let result = try await TygerServerBinary.run(
                    ["run", "--data-dir", dir + "/data", "--database", url],
                    timeout: .seconds(90)
                )
                // The server said no at once: nothing to wait for.
                #expect(ContinuousClock.now - started < .seconds(30), "\(url): \(ContinuousClock.now - started)")
                #expect(result.exitCode == 1, "\(result)")
                #expect(result.stderrText.contains(message), "\(result)")
                #expect(
                    result.stderrText.split(separator: "\n").filter { $0.contains("critical") }.count == 1,
                    "\(result)"
                )
            }
        }
    }
}
