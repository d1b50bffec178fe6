import Foundation
import Synchronization
import TygerModel

/// Subscribers to run changes (`GET /runs/{id}?watch=true`).
///
/// Each subscriber gets an `AsyncStream` of run states keeping only the newest few (events, not data): a slow
/// watcher skips intermediate states, never the last one. Streams of terminal runs finish.
final class RunWatchers: Sendable {
    private struct State {
        var nextId = 0
        var byRun: [Int64: [Int: AsyncStream<Run>.Continuation]] = [:]
    }
    private let state = Mutex(State())

    func subscribe(_ runId: Int64) -> AsyncStream<Run> {
        let (stream, continuation) = AsyncStream.makeStream(of: Run.self, bufferingPolicy: .bufferingNewest(8))
        let id = state.withLock { s -> Int in
            s.nextId += 1
            s.byRun[runId, default: [:]][s.nextId] = continuation
            return s.nextId
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { s in
                s.byRun[runId]?[id] = nil
                if s.byRun[runId]?.isEmpty == true { s.byRun[runId] = nil }
            }
        }
        return stream
    }

    func publish(_ run: Run) {
        guard let id = run.id else { return }
        let continuations = state.withLock { Array(($0.byRun[id] ?? [:]).values) }
        for c in continuations {
            c.yield(run)
            if (run.status ?? .pending).isTerminal { c.finish() }
        }
    }
}
