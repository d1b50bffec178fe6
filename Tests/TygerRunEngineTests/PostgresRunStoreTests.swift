import Foundation
import PostgresNIO
import Testing
import TygerModel
import TygerPostgres
import TygerTestSupport

@testable import TygerRunEngine

/// Two servers (two pools) on one database: what they decide together. The behaviour every run store shares is
/// in `RunRepositoryTests` and `EngineModelTests`.
@Suite(.enabled(if: PostgresTestDatabase.adminURL != nil))
struct PostgresRunStoreTests {
    /// A run created at the same moment on two servers with one idempotency key: one run, the other refused.
    @Test func oneIdempotencyKeyMakesOneRunAcrossServers() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let stores = [PostgresRunEngineStore(database: one.database), PostgresRunEngineStore(database: two)]
        for round in 0..<10 {
            // nil: created; else the error's code.
            let outcomes = await withTaskGroup(of: TygerRunEngineError.Code?.self) { group in
                for store in stores {
                    group.addTask {
                        do {
                            _ = try await store.runs.create(
                                Run(job: JobRunCodeTarget(codespec: .named("c"))),
                                now: Date(),
                                idempotencyKey: "key-\(round)"
                            )
                            return nil
                        } catch let error as TygerRunEngineError {
                            return error.code
                        } catch {
                            return .storage
                        }
                    }
                }
                var all: [TygerRunEngineError.Code?] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            // The second is told the key was used (a 409 to its client), not a database error.
            #expect(outcomes.filter { $0 == nil }.count == 1, "round \(round): \(outcomes)")
            #expect(outcomes.filter { $0 == .conflict }.count == 1, "round \(round): \(outcomes)")
            #expect(try await stores[1].runs.run(idempotencyKey: "key-\(round)") != nil)
        }
    }

    /// Two servers adding the same new codespec version at once: one version, not two.
    @Test func concurrentUpsertsOfOneCodespecMakeOneVersion() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let stores = [PostgresRunEngineStore(database: one.database), PostgresRunEngineStore(database: two)]
        for round in 0..<10 {
            let spec = job(["echo", "\(round)"])
            let versions = try await withThrowingTaskGroup(of: Int.self) { group in
                for store in stores {
                    group.addTask {
                        try await store.codespecs.upsert(name: "shared", spec: spec, now: Date()).version ?? 0
                    }
                }
                var all: [Int] = []
                for try await version in group { all.append(version) }
                return all
            }
            #expect(Set(versions) == [round + 1], "round \(round): versions \(versions)")
        }
    }

    /// What one server commits, another hears of at once (`LISTEN`/`NOTIFY`): a cancel request, a run's new state and
    /// a piece of its log, each naming the run. Before, the other servers only found them by polling.
    @Test func changesOnOneServerAreHeardOnAnother() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let owner = PostgresRunEngineStore(database: one.database, instance: "owner")
        let other = PostgresRunEngineStore(database: two, instance: "other")
        let listening = try #require(other.coordination)
        #expect(listening.notifies)
        let (heard, continuation) = AsyncStream.makeStream(of: CoordinationChange.self)
        let listener = Task { await listening.listen { continuation.yield($0) } }
        defer { listener.cancel() }

        let run = try await owner.runs.create(
            Run(job: JobRunCodeTarget(codespec: .named("c"))),
            now: Date(),
            idempotencyKey: nil
        )
        let id = try #require(run.id)
        // Sent until the listener is surely in place; notices reach a listener in the order their changes
        // committed, so what comes after the first cancel it hears is the update and the log piece.
        var iterator = heard.makeAsyncIterator()
        let sender = try #require(owner.coordination)
        let ready = Task {
            while !Task.isCancelled {
                try await sender.requestCancel(runId: id, now: Date())
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        var first: CoordinationChange?
        repeat { first = await iterator.next() } while first != nil && first != .cancelRequested(id)
        ready.cancel()
        #expect(first == .cancelRequested(id))

        var updated = run
        updated.status = .running
        try await owner.runs.update(updated)
        try await sender.appendLog(runId: id, offset: 0, bytes: Array("line\n".utf8))
        var rest: Set<CoordinationChange> = []
        while rest.count < 2, let change = await iterator.next() {
            if change != .cancelRequested(id) { rest.insert(change) }
        }
        #expect(rest == [.runChanged(id), .logAppended(id)])
    }

    /// The listener's connection is its own, outside the pool: shutting the database down closes it and ends the
    /// listener, so that servers and tests that come and go leave no sessions behind (they once filled the
    /// database's connection slots in a full test run).
    @Test func shuttingTheDatabaseDownEndsItsListener() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        let coordination = try #require(PostgresRunEngineStore(database: two, instance: "other").coordination)
        let ended = Trigger()
        let listener = Task {
            await coordination.listen { _ in }
            ended.fire()
        }
        defer { listener.cancel() }
        @Sendable func listeners() async throws -> Int64 {
            try await one.database.withConnection { connection in
                var count: Int64 = 0
                for try await value in try await connection.query(
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND query ILIKE 'LISTEN%'
                    """,
                    logger: quietLogger
                ).decode(Int64.self) {
                    count = value
                }
                return count
            }
        }
        #expect(await eventually(timeout: .seconds(20)) { (try? await listeners()) == 1 })
        two.shutdown()
        #expect(await eventually(timeout: .seconds(20)) { (try? await listeners()) == 0 })
        #expect(await eventually(timeout: .seconds(20)) { ended.isFired }, "the listener goes on after the shutdown")
    }

    @Test(arguments: [CoordinationChange.cancelRequested(7), .runChanged(1 << 40), .logAppended(0)])
    func noticesSayWhichRunChanged(change: CoordinationChange) {
        #expect(CoordinationChange(payload: change.payload) == change)
    }

    @Test(arguments: ["", "run", "run:", "run:x", "stop:1", ":1", "run:1:2"])
    func otherNoticesAreIgnored(payload: String) {
        #expect(CoordinationChange(payload: payload) == nil)
    }
}
