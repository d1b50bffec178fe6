import Foundation
import Synchronization
import Testing
import TygerControlPlane
import TygerModel
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

/// The repository implementations every repository test runs against.
enum RepositoryKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory
    case sqlite

    var testDescription: String { rawValue }

    /// Makes an empty repository; the directory (for SQLite) lives as long as the returned holder.
    func make() throws -> (repository: any BufferRepository, directory: TemporaryDirectory?) {
        switch self {
        case .inMemory:
            return (InMemoryBufferRepository(), nil)
        case .sqlite:
            let dir = TemporaryDirectory()
            return (try SQLiteBufferRepository(directory: URL(fileURLWithPath: dir.path)), dir)
        }
    }
}
