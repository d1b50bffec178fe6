import Foundation
import Testing
import TygerModel
import TygerPostgres
import TygerTestSupport

@testable import TygerRunEngine

struct EngineModelTests {
    @Test func versionsAreIdempotentAndOrderInsensitive() async throws {
        let directory = TemporaryDirectory(prefix: "tyger-cs")
        defer { withExtendedLifetime(directory) {} }
        let dir = directory.path
        let postgres = try await PostgresTestDatabase.makeIfAvailable()
        defer { withExtendedLifetime(postgres) {} }
        for repo in [
            InMemoryCodespecRepository() as any CodespecRepository, try SQLiteRunEngineStore(directory: dir).codespecs,
        ] + (postgres.map { [PostgresRunEngineStore(database: $0.database).codespecs] } ?? []) {
            var a = job(["echo"], inputs: ["x", "y"], outputs: ["z"], env: ["A": "1", "B": "2"])
            let v1 = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(v1.version == 1)
            a.buffers = BufferParameters(inputs: ["y", "x"], outputs: ["z"])
            let same = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(same.version == 1)
            #expect(same.createdAt == v1.createdAt)
            a.command = ["echo", "changed"]
            let v2 = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(v2.version == 2)
            #expect(try await repo.get(name: "c", version: 1)?.command == ["echo"])
            #expect(try await repo.latest(name: "c")?.version == 2)
            a.command = ["changed", "echo"]
            #expect(try await repo.upsert(name: "c", spec: a, now: Date()).version == 3)
            _ = try await repo.upsert(name: "b", spec: a, now: Date())
            _ = try await repo.upsert(name: "ca", spec: a, now: Date())
            let listed = try await repo.list(prefix: "c", limit: 10, after: nil)
            #expect(listed.map(\.name) == ["c", "ca"])
            #expect(listed.first?.version == 3)
            #expect(try await repo.list(prefix: nil, limit: 10, after: "b").map(\.name) == ["c", "ca"])
            #expect(try await repo.list(prefix: nil, limit: 1, after: nil).map(\.name) == ["b"])
        }
    }

    @Test func expansion() {
        let vars = ["INPUT_PIPE": "/p/in", "A": "1"]
        #expect(RunEnvironment.expand("cat $(INPUT_PIPE)", with: vars) == "cat /p/in")
        #expect(RunEnvironment.expand("$$(INPUT_PIPE) and $(UNKNOWN)", with: vars) == "$(INPUT_PIPE) and $(UNKNOWN)")
        #expect(RunEnvironment.expand("$A $(A)$(A) $", with: vars) == "$A 11 $")
        #expect(RunEnvironment.pipeVariable("my-input") == "MY-INPUT_PIPE")
        #expect(RunEnvironment.underscoredPipeVariable("my-input") == "MY_INPUT_PIPE")
    }

    @Test func continuationTokensRoundTrip() throws {
        let p = RunPosition(createdAtMicros: 1_700_000_000_123_456, id: 42)
        #expect(try RunPosition(token: p.token) == p)
        #expect(throws: TygerRunEngineError.self) { try RunPosition(token: "!!") }
        #expect(try CodespecContinuation.name(fromToken: CodespecContinuation.token(after: "abc")) == "abc")
    }
}

struct RunLifecycleTests {
    @Test func successAfterExitAndTransfers() {
        var m = RunLifecycle()
        #expect(m.status == .pending)
        #expect(m.started(replicas: 1, transfers: 2) == .markRunning)
        #expect(m.status == .running)
        #expect(m.transferEnded(parameter: "in", error: nil) == .none)
        #expect(m.processExited(replica: 0, code: 0) == .releasePipes)
        #expect(m.transferEnded(parameter: "out", error: nil) == .finish(.succeeded, reason: nil, failOutputs: false))
        #expect(m.isFinished)
        #expect(m.cancelRequested() == .none)
    }

    @Test func aQueuedRunIsPendingUntilItBegins() {
        var m = RunLifecycle(timeoutSeconds: 60)
        #expect(m.started(replicas: 2, transfers: 0, queued: true) == .none)
        #expect(m.status == .pending)
        #expect(m.runningCount == nil)
        #expect(m.began() == .markRunning)
        #expect(m.status == .running)
        #expect(m.runningCount == 2)
        #expect(m.began() == .none)
        _ = m.processExited(replica: 0, code: 0)
        #expect(m.processExited(replica: 1, code: 0) == .finish(.succeeded, reason: nil, failOutputs: false))

        // A timeout while still queued says so; the jobs are stopped before the run ends.
        var queued = RunLifecycle(timeoutSeconds: 60)
        _ = queued.started(replicas: 1, transfers: 0, queued: true)
        #expect(queued.timedOut() == .stop(persistCanceling: false, failOutputs: true))
        #expect(queued.began() == .none)
        #expect(
            queued.processExited(replica: 0, code: 143)
                == .finish(.failed, reason: "Run exceeded its timeout while pending", failOutputs: true)
        )

        // A cancel while queued goes through Canceling, as for a running run.
        var canceled = RunLifecycle()
        _ = canceled.started(replicas: 1, transfers: 0, queued: true)
        #expect(canceled.cancelRequested() == .stop(persistCanceling: true, failOutputs: true))
        #expect(canceled.status == .canceling)
        #expect(canceled.began() == .none)
        #expect(canceled.status == .canceling)
    }

    @Test func nonZeroExitFails() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 0)
        #expect(
            m.processExited(replica: 0, code: 3)
                == .finish(.failed, reason: "Main exited with code 3", failOutputs: false)
        )
    }

    @Test func replicaFailureStopsTheOthers() {
        var m = RunLifecycle()
        _ = m.started(replicas: 3, transfers: 0)
        #expect(m.processExited(replica: 1, code: 2) == .stop(persistCanceling: false, failOutputs: false))
        #expect(m.processExited(replica: 0, code: 143) == .none)
        #expect(
            m.processExited(replica: 2, code: 0)
                == .finish(.failed, reason: "Replica 1 exited with code 2", failOutputs: false)
        )
    }

    @Test func cancelWhileRunningGoesThroughCanceling() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 1)
        #expect(m.cancelRequested() == .stop(persistCanceling: true, failOutputs: true))
        #expect(m.status == .canceling)
        #expect(m.cancelRequested() == .none)
        #expect(m.timedOut() == .none)
        #expect(m.processExited(replica: 0, code: 143) == .releasePipes)
        #expect(
            m.transferEnded(parameter: "out", error: nil)
                == .finish(.canceled, reason: "Canceled by user", failOutputs: true)
        )
    }

    @Test func pendingEvents() {
        var a = RunLifecycle()
        #expect(a.cancelRequested() == .finish(.canceled, reason: "Canceled by user", failOutputs: true))
        #expect(a.started(replicas: 1, transfers: 0) == .none)
        var b = RunLifecycle()
        #expect(b.timedOut() == .finish(.failed, reason: "Run exceeded its timeout while pending", failOutputs: true))
        var c = RunLifecycle()
        #expect(c.startFailed("boom") == .finish(.failed, reason: "Failed to start the run: boom", failOutputs: true))
    }

    @Test func timeoutWhileRunning() {
        var m = RunLifecycle(timeoutSeconds: 2)
        _ = m.started(replicas: 1, transfers: 0)
        #expect(m.timedOut() == .stop(persistCanceling: false, failOutputs: true))
        #expect(m.status == .running)
        #expect(
            m.processExited(replica: 0, code: 143)
                == .finish(
                    .failed,
                    reason: "Run exceeded its timeout of 2 seconds while running",
                    failOutputs: true
                )
        )
    }

    @Test func transferFailureStopsAndFails() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 2)
        #expect(
            m.transferEnded(parameter: "in", error: "the buffer is in a permanently failed state")
                == .stop(persistCanceling: false, failOutputs: true)
        )
        #expect(m.processExited(replica: 0, code: 143) == .releasePipes)
        #expect(
            m.transferEnded(parameter: "out", error: nil)
                == .finish(
                    .failed,
                    reason: "Buffer 'in': the buffer is in a permanently failed state",
                    failOutputs: true
                )
        )
    }

    @Test func serverRestartFailsAnyLiveRun() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 0)
        #expect(m.serverRestarted() == .finish(.failed, reason: RunLifecycle.Reason.serverRestarted, failOutputs: true))
        #expect(m.serverRestarted() == .none)
        #expect(m.processExited(replica: 0, code: 0) == .none)
    }
}

struct RunRepositoryTests {
    @Test func listingFiltersAndPages() async throws {
        let directory = TemporaryDirectory(prefix: "tyger-rr")
        defer { withExtendedLifetime(directory) {} }
        let dir = directory.path
        let sqlite = try SQLiteRunEngineStore(directory: dir)
        let postgres = try await PostgresTestDatabase.makeIfAvailable()
        defer { withExtendedLifetime(postgres) {} }
        for repo in [InMemoryRunRepository() as any RunRepository, sqlite.runs]
            + (postgres.map { [PostgresRunEngineStore(database: $0.database).runs] } ?? [])
        {
            let base = Date(timeIntervalSince1970: 1_700_000_000)
            var ids: [Int64] = []
            for i in 0..<5 {
                var run = Run(job: JobRunCodeTarget(codespec: .named("c")), tags: i % 2 == 0 ? ["even": "yes"] : nil)
                run.status = i == 4 ? .running : .succeeded
                ids.append(try await repo.create(run, now: base.addingTimeInterval(Double(i)), idempotencyKey: nil).id!)
            }
            #expect(ids == [1, 2, 3, 4, 5])
            #expect(try await repo.list(RunQuery(limit: 10)).map(\.id) == [5, 4, 3, 2, 1])
            #expect(try await repo.list(RunQuery(limit: 2)).map(\.id) == [5, 4])
            let page2 = try await repo.list(
                RunQuery(
                    limit: 2,
                    after: RunPosition(createdAtMicros: RunPosition.micros(base.addingTimeInterval(3)), id: 4)
                )
            )
            #expect(page2.map(\.id) == [3, 2])
            #expect(try await repo.list(RunQuery(limit: 10, since: base.addingTimeInterval(2))).map(\.id) == [5, 4])
            #expect(try await repo.list(RunQuery(limit: 10, statuses: [.running])).map(\.id) == [5])
            #expect(try await repo.list(RunQuery(limit: 10, tags: ["even": "yes"])).map(\.id) == [5, 3, 1])
            #expect(try await repo.counts(since: nil, tags: [:]) == [.succeeded: 4, .running: 1])
            #expect(try await repo.nonTerminal().map(\.id) == [5])
            var five = try #require(try await repo.get(id: 5))
            let runningETag = try #require(five.eTag)
            five.status = .failed
            five.tags = ["x": "y"]
            let failed = try await repo.update(five)
            // A whole-run update (a supervisor persisting its copy) changes the status and the ETag, never the tags.
            #expect(failed.status == .failed && failed.tags == ["even": "yes"] && failed.eTag != runningETag)
            #expect(try await repo.get(id: 5)?.status == .failed)
            #expect(try await repo.list(RunQuery(limit: 10, tags: ["x": "y"])).isEmpty)
            let stale = await #expect(throws: TygerRunEngineError.self) {
                try await repo.updateTags(id: 5, tags: ["x": "y"], ifMatch: runningETag)
            }
            #expect(stale?.code == .preconditionFailed)
            let tagged = try await repo.updateTags(id: 5, tags: ["x": "y"], ifMatch: "\"\(failed.eTag ?? "")\"")
            #expect(tagged.tags == ["x": "y"] && tagged.eTag != failed.eTag && tagged.eTag == tagged.computedETag)
            #expect(try await repo.get(id: 5)?.eTag == tagged.eTag)
            #expect(try await repo.list(RunQuery(limit: 10, tags: ["x": "y"])).map(\.id) == [5])
            #expect(try await repo.updateTags(id: 5, tags: nil, ifMatch: "*").tags == nil)
            let missing = await #expect(throws: TygerRunEngineError.self) {
                try await repo.updateTags(id: 99, tags: nil, ifMatch: nil)
            }
            #expect(missing?.code == .notFound)
            #expect(try await repo.nonTerminal().isEmpty)

            // Idempotency keys: remembered with the run; a reused key is refused at the repository.
            let keyed = try await repo.create(
                Run(job: JobRunCodeTarget(codespec: .named("c"))),
                now: base.addingTimeInterval(9),
                idempotencyKey: "k1"
            )
            #expect(try await repo.run(idempotencyKey: "k1")?.id == keyed.id)
            #expect(try await repo.run(idempotencyKey: "k2") == nil)
            let reused = await #expect(throws: TygerRunEngineError.self) {
                try await repo.create(
                    Run(job: JobRunCodeTarget(codespec: .named("c"))),
                    now: base,
                    idempotencyKey: "k1"
                )
            }
            #expect(reused?.code == .conflict)
        }
        // The SQLite data survives reopening.
        let reopened = try SQLiteRunEngineStore(directory: dir)
        #expect(try await reopened.runs.get(id: 5)?.status == .failed)
    }
}
