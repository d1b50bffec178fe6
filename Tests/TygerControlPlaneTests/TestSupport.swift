import Foundation
import Synchronization
import Testing
import TygerControlPlane
import TygerModel

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

/// A temporary directory removed when the value is deinitialized.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tyger-cp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
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
            let dir = try TemporaryDirectory()
            return (try SQLiteBufferRepository(directory: dir.url), dir)
        }
    }
}
