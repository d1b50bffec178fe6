import Foundation
import Testing
@testable import TygerRunEngine

struct RunSpecTests {
    @Test func namedCodespecRunSpec() throws {
        let run = try YAMLSpecs.run(fromYAML: """
            job:
              codespec: hello/versions/2
              buffers: {input: abc, output: _}
              tags: {k: v}
              nodePool: cpu
              replicas: 2
            timeoutSeconds: 60
            cluster: local
            tags: {run: "1"}
            """)
        #expect(run.job.codespec == .named("hello/versions/2"))
        #expect(run.job.buffers == ["input": "abc", "output": "_"])
        #expect(run.job.replicas == 2)
        #expect(run.job.nodePool == "cpu")
        #expect(run.timeoutSeconds == 60)
        #expect(run.tags == ["run": "1"])
        #expect(try CodespecReference.parse("hello/versions/2") == ("hello", 2))
    }

    @Test func inlineCodespecGetsJobKind() throws {
        let run = try YAMLSpecs.run(fromYAML: """
            job:
              codespec:
                image: ubuntu
                command: [echo, hi]
                buffers: {outputs: [out]}
            """)
        guard case .inline(let spec) = run.job.codespec else { Issue.record("not inline"); return }
        #expect(spec.kind == .job)
        #expect(spec.buffers?.outputs == ["out"])
        #expect(run.job.replicas == 1)
        #expect(run.effectiveTimeoutSeconds == 43200)
    }

    @Test(arguments: [
        ("job: {codespec: a}\nbogus: 1", "unknown field 'bogus' in run"),
        ("job: {codespec: a, extra: 1}", "unknown field 'extra' in job"),
        ("job: {codespec: 'a/v/1'}", "The codespec reference 'a/v/1' is invalid"),
        ("job: {codespec: {image: x, buffers: {inputs: [a, a]}}}", "'a' is duplicated"),
        ("timeoutSeconds: 5", "missing required properties including: 'job'"),
    ])
    func invalidRunSpecs(yaml: String, message: String) {
        do {
            _ = try YAMLSpecs.run(fromYAML: yaml)
            Issue.record("expected \(message)")
        } catch let error as TygerRunEngineError {
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func runJSONMatchesUpstreamShape() throws {
        var run = Run(job: JobRunCodeTarget(codespec: .named("hello"), buffers: ["input": "x"]))
        run.id = 7
        run.status = .succeeded
        run.createdAt = Date(timeIntervalSince1970: 1_700_000_000.25)
        let json = String(decoding: try RunEngineJSON.makeEncoder().encode(run), as: UTF8.self)
        #expect(json.contains("\"status\":\"Succeeded\""))
        #expect(json.contains("\"createdAt\":\"2023-11-14T22:13:20.250000Z\""))
        #expect(json.contains("\"replicas\":1"))
        #expect(!json.contains("null"))
        let back = try RunEngineJSON.makeDecoder().decode(Run.self, from: Data(json.utf8))
        #expect(back == run)
        let offset = try RunEngineJSON.makeDecoder().decode(
            Run.self, from: Data(#"{"job":{"codespec":"a"},"createdAt":"2023-11-14T23:13:20+01:00"}"#.utf8))
        #expect(offset.createdAt == Date(timeIntervalSince1970: 1_700_000_000))
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

    @Test func nonZeroExitFails() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 0)
        #expect(m.processExited(replica: 0, code: 3) == .finish(.failed, reason: "Main exited with code 3", failOutputs: false))
    }

    @Test func replicaFailureStopsTheOthers() {
        var m = RunLifecycle()
        _ = m.started(replicas: 3, transfers: 0)
        #expect(m.processExited(replica: 1, code: 2) == .stop(persistCanceling: false, failOutputs: false))
        #expect(m.processExited(replica: 0, code: 143) == .none)
        #expect(m.processExited(replica: 2, code: 0) == .finish(.failed, reason: "Replica 1 exited with code 2", failOutputs: false))
    }

    @Test func cancelWhileRunningGoesThroughCanceling() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 1)
        #expect(m.cancelRequested() == .stop(persistCanceling: true, failOutputs: true))
        #expect(m.status == .canceling)
        #expect(m.cancelRequested() == .none)
        #expect(m.timedOut() == .none)
        #expect(m.processExited(replica: 0, code: 143) == .releasePipes)
        #expect(m.transferEnded(parameter: "out", error: nil) == .finish(.canceled, reason: "Canceled by user", failOutputs: true))
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
        #expect(m.processExited(replica: 0, code: 143) == .finish(
            .failed, reason: "Run exceeded its timeout of 2 seconds while running", failOutputs: true))
    }

    @Test func transferFailureStopsAndFails() {
        var m = RunLifecycle()
        _ = m.started(replicas: 1, transfers: 2)
        #expect(m.transferEnded(parameter: "in", error: "the buffer is in a permanently failed state") == .stop(persistCanceling: false, failOutputs: true))
        #expect(m.processExited(replica: 0, code: 143) == .releasePipes)
        #expect(m.transferEnded(parameter: "out", error: nil) == .finish(
            .failed, reason: "Buffer 'in': the buffer is in a permanently failed state", failOutputs: true))
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
        let dir = FileManager.default.temporaryDirectory.path + "/tyger-rr-\(UUID().uuidString)"
        let sqlite = try SQLiteRunEngineStore(directory: dir)
        for repo in [InMemoryRunRepository() as any RunRepository, sqlite.runs] {
            let base = Date(timeIntervalSince1970: 1_700_000_000)
            var ids: [Int64] = []
            for i in 0..<5 {
                var run = Run(job: JobRunCodeTarget(codespec: .named("c")), tags: i % 2 == 0 ? ["even": "yes"] : nil)
                run.status = i == 4 ? .running : .succeeded
                ids.append(try await repo.create(run, now: base.addingTimeInterval(Double(i))).id!)
            }
            #expect(ids == [1, 2, 3, 4, 5])
            #expect(try await repo.list(RunQuery(limit: 10)).map(\.id) == [5, 4, 3, 2, 1])
            #expect(try await repo.list(RunQuery(limit: 2)).map(\.id) == [5, 4])
            let page2 = try await repo.list(RunQuery(limit: 2, after: RunPosition(createdAtMicros: RunPosition.micros(base.addingTimeInterval(3)), id: 4)))
            #expect(page2.map(\.id) == [3, 2])
            #expect(try await repo.list(RunQuery(limit: 10, since: base.addingTimeInterval(2))).map(\.id) == [5, 4])
            #expect(try await repo.list(RunQuery(limit: 10, statuses: [.running])).map(\.id) == [5])
            #expect(try await repo.list(RunQuery(limit: 10, tags: ["even": "yes"])).map(\.id) == [5, 3, 1])
            #expect(try await repo.counts(since: nil, tags: [:]) == [.succeeded: 4, .running: 1])
            #expect(try await repo.nonTerminal().map(\.id) == [5])
            var five = try #require(try await repo.get(id: 5))
            five.status = .failed
            five.tags = ["x": "y"]
            try await repo.update(five)
            #expect(try await repo.get(id: 5)?.status == .failed)
            #expect(try await repo.list(RunQuery(limit: 10, tags: ["x": "y"])).map(\.id) == [5])
            #expect(try await repo.nonTerminal().isEmpty)
        }
        // The SQLite data survives reopening.
        let reopened = try SQLiteRunEngineStore(directory: dir)
        #expect(try await reopened.runs.get(id: 5)?.status == .failed)
    }
}
