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
