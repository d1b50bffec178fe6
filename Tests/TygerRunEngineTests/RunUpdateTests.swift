import Foundation
import Synchronization
import Testing
import TygerModel

@testable import TygerRunEngine

/// A wall clock the test moves by hand.
final class ManualClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var wallClock: WallClock { WallClock { self.current.withLock { $0 } } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

struct RunUpdateTests {
    @Test func timeoutFollowsTheInjectedClock() async throws {
        let clock = ManualClock()
        try await withRunningEngine(try Harness(clock: clock.wallClock)) { h in
            var request = Run(job: JobRunCodeTarget(codespec: .inline(job(["sleep", "60"]))))
            request.timeoutSeconds = 3600
            let run = try await h.engine.createRun(request)
            #expect(run.createdAt == Date(timeIntervalSince1970: 1_800_000_000))
            let running = try await h.waitForStatus(run.id!, .running)
            #expect(running.startedAt == Date(timeIntervalSince1970: 1_800_000_000))
            clock.advance(by: 3601)
            // The timer re-reads the clock every second; the wait is wide for a loaded machine (10 s ran out once in a
            // full run whose disk was saturated: the run's state change waits for SQLite's fsync).
            let done = try await h.waitForTerminal(run.id!, timeout: .seconds(60))
            #expect(done.status == .failed)
            #expect(done.statusReason == "Run exceeded its timeout of 3600 seconds while running")
            #expect(done.finishedAt == Date(timeIntervalSince1970: 1_800_003_601))
        }
    }

    /// Buffers a run creates: bounded by creation + timeout + TTL while it lives, end + TTL once it ends; a job's
    /// bufferTtl counts from creation instead; no TTL keeps them; buffers given as arguments are not touched.
    @Test func runCreatedBuffersExpireAfterTheRunEnds() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let writer = job(["bash", "-c", #"echo x > "$OUT_PIPE""#], outputs: ["out"])
        @Sendable func outputID(_ run: Run) throws -> String { try #require(run.job.buffers?["out"]) }

        let clock = ManualClock()
        try await withRunningEngine(try Harness(clock: clock.wallClock, runBufferTTL: .seconds(3600))) { h in
            var request = Run(job: JobRunCodeTarget(codespec: .inline(writer)))
            request.timeoutSeconds = 600
            let run = try await h.engine.createRun(request)
            let out = try outputID(run)
            #expect(h.expiries.atCreation(out) == .some(start.addingTimeInterval(600 + 3600)))
            clock.advance(by: 5)
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .succeeded, "\(done)")
            let finishedAt = try #require(done.finishedAt)
            #expect(h.expiries.atEnd(out) == finishedAt.addingTimeInterval(3600))

            var own = Run(job: JobRunCodeTarget(codespec: .inline(writer)))
            own.job.bufferTtl = "00:10:00"
            let ownRun = try await h.engine.createRun(own)
            let ownOut = try outputID(ownRun)
            #expect(h.expiries.atCreation(ownOut) == .some(start.addingTimeInterval(5 + 600)))
            _ = try await h.waitForTerminal(ownRun.id!)
            #expect(h.expiries.atEnd(ownOut) == nil, "job.bufferTtl counts from creation only")

            let mine = try await h.newBuffer()
            var given = Run(job: JobRunCodeTarget(codespec: .inline(writer)))
            given.job.buffers = ["out": mine]
            let givenRun = try await h.engine.createRun(given)
            _ = try await h.waitForTerminal(givenRun.id!)
            #expect(h.expiries.atCreation(mine) == nil && h.expiries.atEnd(mine) == nil)

            var invalid = Run(job: JobRunCodeTarget(codespec: .inline(writer)))
            invalid.job.bufferTtl = "soon"
            let refused = await #expect(throws: TygerRunEngineError.self) { try await h.engine.createRun(invalid) }
            #expect(refused?.code == .invalidInput)
        }
        try await withRunningEngine(try Harness(runBufferTTL: nil)) { h in
            let run = try await h.engine.createRun(Run(job: JobRunCodeTarget(codespec: .inline(writer))))
            let out = try outputID(run)
            #expect(h.expiries.atCreation(out) == .some(nil), "no TTL: kept forever")
            _ = try await h.waitForTerminal(run.id!)
            #expect(h.expiries.atEnd(out) == nil)
        }
    }

    @Test func tagUpdatesSurviveTheRunAndChangeTheETag() async throws {
        try await withRunningEngine(try Harness(sqlite: true)) { h in
            let created = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["sleep", "60"]))), tags: ["a": "1"])
            )
            let id = try #require(created.id)
            let running = try await h.waitForStatus(id, .running)
            let firstETag = try #require(running.eTag)
            #expect(firstETag == running.computedETag)
            let stale = await #expect(throws: TygerRunEngineError.self) {
                try await h.engine.updateRunTags(id: id, tags: ["b": "2"], ifMatch: "\"0\"")
            }
            #expect(stale?.code == .preconditionFailed)
            let bad = await #expect(throws: TygerModelError.self) {
                try await h.engine.updateRunTags(id: id, tags: ["bad key": "x"], ifMatch: nil)
            }
            #expect(bad?.code == .invalidTags)
            let tagged = try await h.engine.updateRunTags(id: id, tags: ["b": "2"], ifMatch: firstETag)
            #expect(tagged.tags == ["b": "2"] && tagged.eTag != firstETag)
            // The run ends after the update: its supervisor's later writes keep the new tags.
            _ = try await h.engine.cancelRun(id: id)
            let done = try await h.waitForTerminal(id)
            #expect(done.status == .canceled)
            #expect(done.tags == ["b": "2"])
            #expect(done.eTag != tagged.eTag)
            #expect(try await h.engine.listRuns(RunQuery(tags: ["b": "2"])).items.map(\.id) == [id])
            #expect(try await h.engine.listRuns(RunQuery(tags: ["a": "1"])).items.isEmpty)
            let missing = await #expect(throws: TygerRunEngineError.self) {
                try await h.engine.updateRunTags(id: id + 100, tags: nil, ifMatch: nil)
            }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func idempotencyKeyReturnsTheFirstRun() async throws {
        try await withRunningEngine(try Harness(sqlite: true)) { h in
            let request = Run(job: JobRunCodeTarget(codespec: .inline(job(["true"]))))
            async let first = h.engine.createRun(request, idempotencyKey: "retry-1")
            async let second = h.engine.createRun(request, idempotencyKey: "retry-1")
            let (a, b) = try await (first, second)
            #expect(a.id == b.id)
            let third = try await h.engine.createRun(request, idempotencyKey: "retry-1")
            #expect(third.id == a.id)
            let other = try await h.engine.createRun(request, idempotencyKey: "retry-2")
            #expect(other.id != a.id)
            let unkeyed = try await h.engine.createRun(request)
            #expect(unkeyed.id != a.id && unkeyed.id != other.id)
            #expect(try await h.engine.listRuns(RunQuery(limit: 10)).items.count == 3)
        }
    }

    /// A timeout far past any real one (`1e16` used to trap the server in the timer's Int64 conversion) is refused
    /// with the field and its limit; the largest allowed one runs without trapping.
    @Test func outOfRangeNumbersAreRefusedWithTheirLimit() async throws {
        try await withRunningEngine(try Harness()) { h in
            var huge = Run(job: JobRunCodeTarget(codespec: .inline(job(["true"]))))
            huge.timeoutSeconds = 10_000_000_000_000_000
            let refused = await #expect(throws: TygerRunEngineError.self) { try await h.engine.createRun(huge) }
            #expect(refused?.code == .invalidInput)
            #expect(refused?.message == "timeoutSeconds must be at most 2147483647")

            var many = Run(job: JobRunCodeTarget(codespec: .inline(job(["true"])), replicas: 1_000_000))
            many.timeoutSeconds = 60
            let tooMany = await #expect(throws: TygerRunEngineError.self) { try await h.engine.createRun(many) }
            #expect(tooMany?.message == "job.replicas must be at most 1000")

            var longest = Run(job: JobRunCodeTarget(codespec: .inline(job(["true"]))))
            longest.timeoutSeconds = RunEngine.maxTimeoutSeconds
            let run = try await h.engine.createRun(longest)
            #expect(try await h.waitForTerminal(run.id!).status == .succeeded)
        }
    }
}
