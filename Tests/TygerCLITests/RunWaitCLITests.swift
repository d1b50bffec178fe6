import Foundation
import Testing
import TygerTestSupport

/// `tyger run wait ID [--timeout D]`: the run's end as an exit status (0 succeeded, 1 failed, 2 canceled, 124 the
/// wait timed out), its final status as JSON.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RunWaitCLITests {
    private func spec(_ s: TygerSession, _ name: String, _ script: String) throws -> String {
        try s.file(
            name + ".yml",
            """
            job:
              codespec:
                image: ubuntu
                command: [bash, -c, "\(script)"]
            """
        )
    }

    @Test func theExitStatusSaysHowTheRunEnded() async throws {
        try await withTyger { s in
            let succeeded = try await s.createRun(["-f", try spec(s, "ok", "echo done")])
            let waited = try await s.tyger(["run", "wait", succeeded])
            #expect(waited.exitCode == 0, "\(waited)")
            let status = try JSONSerialization.jsonObject(with: Data(waited.stdout)) as? [String: Any]
            #expect(status?["status"] as? String == "Succeeded", "\(waited)")

            let failed = try await s.createRun(["-f", try spec(s, "fails", "exit 3")])
            let failure = try await s.tyger(["run", "wait", failed])
            #expect(failure.exitCode == 1, "\(failure)")
            #expect(failure.stderrText.contains("run \(failed) failed: "), "\(failure)")
            #expect(failure.stderrText.split(separator: "\n").count == 1, "\(failure)")

            let long = try await s.createRun(["-f", try spec(s, "long", "sleep 600")])
            let started = ContinuousClock.now
            let timedOut = try await s.tyger(["run", "wait", long, "--timeout", "1"])
            let took = ContinuousClock.now - started
            #expect(timedOut.exitCode == 124, "\(timedOut)")
            #expect(took < .seconds(10), "the wait took \(took)")
            #expect(timedOut.stderrText.contains("had not ended after 1"), "\(timedOut)")
            #expect(timedOut.stdout.isEmpty, "\(timedOut)")
            // The run goes on after the wait gives up; a cancel ends it, and a wait then says so.
            let run = try await s.show(long)
            #expect(["Pending", "Running"].contains(run["status"] as? String ?? ""), "\(run)")
            let waiting = try s.start(["run", "wait", long, "--timeout", "2m"])
            _ = try await s.tyger(["run", "cancel", long])
            let canceled = try await waiting.wait(timeout: .seconds(60))
            #expect(canceled.exitCode == 2, "\(canceled)")
            #expect(canceled.stdoutText.contains("Canceled"), "\(canceled)")
        }
    }

    @Test func badTimeoutsAndMissingRunsAreRefused() async throws {
        try await withTyger { s in
            for bad in ["5x", "-1", "", "1e3", "m"] {
                let refused = try await s.tyger(["run", "wait", "1", "--timeout", bad])
                #expect(refused.exitCode == 64, "\(bad): \(refused)")
            }
            let missing = try await s.tyger(["run", "wait", "999", "--timeout", "5s"])
            #expect(missing.exitCode == 1, "\(missing)")
        }
    }
}
