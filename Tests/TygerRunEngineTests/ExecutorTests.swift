import Foundation
import Glibc
import NIOCore
import Synchronization
import Testing
import TygerCore
import TygerDataPath
import TygerIO
import TygerModel
import TygerStorage

@testable import TygerRunEngine

@Suite(.serialized)
struct ExecutorTests {
    static let hello = [
        "bash", "-c", #"set -euo pipefail; inp=$(cat "$INPUT_PIPE"); echo "Hello ${inp}" > "$OUTPUT_PIPE""#,
    ]

    @Test func helloExample() async throws {
        try await withRunningEngine(try Harness()) { h in
            _ = try await h.engine.upsertCodespec(
                name: "hello",
                job(Self.hello, inputs: ["input"], outputs: ["output"])
            )
            let input = try await h.newBuffer()
            try await h.write("Paul", to: input)
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .named("hello"), buffers: ["input": input]))
            )
            #expect(run.status == .pending)
            let output = try #require(run.job.buffers?["output"])
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .succeeded, "\(done.statusReason ?? "")")
            #expect(done.startedAt != nil && done.finishedAt != nil)
            #expect(try await h.read(output) == "Hello Paul\n")
            guard case .inline(let resolved) = done.job.codespec else {
                Issue.record("codespec not resolved")
                return
            }
            #expect(resolved.name == "hello" && resolved.version == 1)
        }
    }

    @Test func nonZeroExitFails() async throws {
        try await withRunningEngine(try Harness()) { h in
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["bash", "-c", "exit 3"]))))
            )
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .failed)
            #expect(done.statusReason == "Main exited with code 3")
        }
    }

    @Test func unknownCommandFailsToStart() async throws {
        try await withRunningEngine(try Harness()) { h in
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["no-such-program-xyz"]))))
            )
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .failed)
            #expect(
                done.statusReason?.contains("Failed to start the run: the command 'no-such-program-xyz' was not found")
                    == true
            )
        }
    }

    @Test func timeoutWhileRunning() async throws {
        try await withRunningEngine(try Harness()) { h in
            let start = ContinuousClock.now
            var request = Run(job: JobRunCodeTarget(codespec: .inline(job(["sleep", "60"], outputs: ["out"]))))
            request.timeoutSeconds = 2
            let run = try await h.engine.createRun(request)
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .failed)
            #expect(done.statusReason == "Run exceeded its timeout of 2 seconds while running")
            #expect(ContinuousClock.now - start < .seconds(10))
            let out = try #require(done.job.buffers?["out"])
            await #expect(throws: TygerCoreError.self) { _ = try await h.read(out) }
        }
    }

    @Test func cancelMarksOutputsFailed() async throws {
        try await withRunningEngine(try Harness()) { h in
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["sleep", "60"], outputs: ["out"]))))
            )
            #expect(try await h.waitForStatus(run.id!, .running).status == .running)
            let afterCancel = try await h.engine.cancelRun(id: run.id!)
            #expect(afterCancel.status == .canceling || afterCancel.status == .canceled)
            let done = try await h.waitForTerminal(run.id!, timeout: .seconds(10))
            #expect(done.status == .canceled)
            #expect(done.statusReason == "Canceled by user")
            let out = try #require(done.job.buffers?["out"])
            do {
                _ = try await h.read(out)
                Issue.record("a canceled run's output must be failed")
            } catch let error as TygerCoreError {
                #expect(error.code == .bufferFailed)
            }
            #expect(try await h.engine.cancelRun(id: run.id!).status == .canceled)
        }
    }

    @Test func pipesNeverOpenedDoNotHang() async throws {
        try await withRunningEngine(try Harness()) { h in
            // The input buffer is never written: the input side must still stop when the process exits.
            let input = try await h.newBuffer()
            let run = try await h.engine.createRun(
                Run(
                    job: JobRunCodeTarget(
                        codespec: .inline(job(["true"], inputs: ["input"], outputs: ["output"])),
                        buffers: ["input": input]
                    )
                )
            )
            let done = try await h.waitForTerminal(run.id!, timeout: .seconds(60))
            #expect(done.status == .succeeded, "\(done.status as Any) \(done.statusReason ?? "")")
            #expect(try await h.read(try #require(done.job.buffers?["output"])) == "")
        }
    }

    @Test func logsTailSinceTimestampsAndLongLines() async throws {
        try await withRunningEngine(try Harness()) { h in
            let script =
                "for i in 1 2 3 4 5; do echo $i; done; echo err >&2; head -c 2000000 /dev/zero | tr '\\0' a; echo"
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["bash", "-c", script]))))
            )
            let followed = try await h.logs(run.id!, RunLogOptions(follow: true))
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .succeeded)
            let all = try await h.logs(run.id!)
            let lines = all.split(separator: "\n", omittingEmptySubsequences: false)
            // stdout lines keep their order; the stderr line may be stamped anywhere among them (separate pipes).
            #expect(lines.filter { $0 != "err" }.prefix(5).joined(separator: "\n") == "1\n2\n3\n4\n5")
            #expect(all.contains("err\n"))
            #expect(lines.contains { $0.count == 2_000_000 && $0.allSatisfy { $0 == "a" } })
            #expect(followed == all)
            let tail = try await h.logs(run.id!, RunLogOptions(tailLines: 2))
            #expect(tail.hasSuffix(String(repeating: "a", count: 2_000_000) + "\n"))
            #expect(tail.split(separator: "\n").count == 2)
            let stamped = try await h.logs(run.id!, RunLogOptions(timestamps: true))
            let first = try #require(stamped.split(separator: "\n").first { $0.hasSuffix(" 1") })
            let parts = first.split(separator: " ", maxSplits: 1)
            #expect(parts.count == 2 && parts[1] == "1")
            let stamp = try #require(RFC3339.parse(String(parts[0])))
            #expect(abs(stamp.timeIntervalSinceNow) < 60)
            let sinceFirst = try await h.logs(run.id!, RunLogOptions(since: stamp))
            #expect(!sinceFirst.split(separator: "\n").contains("1"), "line 1 is not after its own stamp")
            #expect(sinceFirst.split(separator: "\n").contains("5"))
            #expect(try await h.logs(run.id!, RunLogOptions(since: Date().addingTimeInterval(60))) == "")
        }
    }

    @Test func largeStreamThroughCat() async throws {
        try await withRunningEngine(try Harness()) { h in
            let size: Int64 = 256 << 20
            let input = try await h.newBuffer()
            _ = try await BufferWriter.write(from: GeneratedSource(size: size), to: h.blobStore(input))
            let expected = CollectingSink(keep: false)
            _ = try await BufferReader.read(from: h.blobStore(input), to: expected)
            let spec = job(
                ["bash", "-c", #"cat "$INPUT_PIPE" > "$OUTPUT_PIPE""#],
                inputs: ["input"],
                outputs: ["output"]
            )
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(spec), buffers: ["input": input]))
            )
            let done = try await h.waitForTerminal(run.id!, timeout: .seconds(120))
            #expect(done.status == .succeeded, "\(done.statusReason ?? "")")
            let actual = CollectingSink(keep: false)
            _ = try await BufferReader.read(from: h.blobStore(try #require(done.job.buffers?["output"])), to: actual)
            #expect(expected.count == size)
            #expect(actual.count == size)
            #expect(actual.crc == expected.crc)
        }
    }

    @Test func replicasGetIndexesAndOnlyReplicaZeroGetsThePipes() async throws {
        try await withRunningEngine(try Harness()) { h in
            let script =
                #"echo "replica $TYGER_REPLICA_INDEX of $TYGER_REPLICA_COUNT pipe $OUT_PIPE"; if [ "$TYGER_REPLICA_INDEX" = 0 ]; then echo hi > "$OUT_PIPE"; fi"#
            let run = try await h.engine.createRun(
                Run(
                    job: JobRunCodeTarget(
                        codespec: .inline(job(["bash", "-c", script], outputs: ["out"])),
                        replicas: 3
                    )
                )
            )
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .succeeded, "\(done.statusReason ?? "")")
            let logs = try await h.logs(run.id!)
            for i in 0..<3 { #expect(logs.contains("[replica-\(i)] replica \(i) of 3 pipe")) }
            #expect(logs.contains("replica 1 of 3 pipe /dev/null"))
            #expect(try await h.read(try #require(done.job.buffers?["out"])) == "hi\n")
        }
    }

    @Test func envExpansionAndDashedPipeNames() async throws {
        try await withRunningEngine(try Harness()) { h in
            // `$$(NAME)` reaches bash as the literal `$(NAME)` in $1 (bash does not expand parameter values).
            var spec = job(
                [
                    "bash", "-c",
                    #"echo "$GREETING $(NAME) $1" > "$(MY-OUT_PIPE)"; test "$MY_OUT_PIPE" = "$(MY-OUT_PIPE)""#, "x",
                    "$$(NAME)",
                ],
                outputs: ["my-out"],
                env: ["GREETING": "hi-$(NAME)", "NAME": "bob"]
            )
            spec.workingDir = "/tmp"
            let run = try await h.engine.createRun(Run(job: JobRunCodeTarget(codespec: .inline(spec))))
            let done = try await h.waitForTerminal(run.id!)
            #expect(done.status == .succeeded, "\(done.statusReason ?? "")")
            #expect(try await h.read(try #require(done.job.buffers?["my-out"])) == "hi-bob bob $(NAME)\n")
        }
    }

    @Test func resourcesThatCannotBeHonouredFailAtCreation() async throws {
        let h = try Harness()
        var spec = job(["true"])
        spec.resources = CodespecResources(requests: ResourceQuantities(cpu: "100000"))
        await #expect(throws: TygerRunEngineError.self) {
            _ = try await h.engine.createRun(Run(job: JobRunCodeTarget(codespec: .inline(spec))))
        }
        var executor = LocalProcessExecutor()
        executor.hasGPU = false
        spec.resources = CodespecResources(gpu: "1")
        await #expect(throws: TygerRunEngineError.self) { try await executor.validate(codespec: spec, replicas: 1) }
        await #expect(throws: TygerRunEngineError.self) {
            _ = try await h.engine.createRun(Run(job: JobRunCodeTarget(codespec: .named("missing"))))
        }
        await #expect(throws: TygerRunEngineError.self) {
            _ = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(job(["true"], inputs: ["a"])), buffers: ["b": "x"]))
            )
        }
    }

    @Test func ephemeralRelay() async throws {
        try await withRunningEngine(try Harness()) { h in
            let spec = job(
                ["bash", "-c", #"tr a-z A-Z < "$INPUT_PIPE" > "$OUTPUT_PIPE""#],
                inputs: ["input"],
                outputs: ["output"]
            )
            let run = try await h.engine.createRun(
                Run(job: JobRunCodeTarget(codespec: .inline(spec), buffers: ["input": "_", "output": "_"]))
            )
            let inputId = try #require(run.job.buffers?["input"])
            #expect(inputId.hasPrefix("run-\(run.id!)-temp-"))
            let target = try await h.engine.ephemeralTarget(bufferId: inputId)
            #expect(target.parameter == "input" && target.isInput)
            async let written: Void = h.engine.withEphemeralInput(runId: run.id!, parameter: "input") { writer in
                try await writer.write(ByteBuffer(string: "hello "))
                try await writer.write(ByteBuffer(string: "relay"))
            }
            let output = try await h.engine.withEphemeralOutput(runId: run.id!, parameter: "output") { reader in
                var bytes: [UInt8] = []
                for try await chunk in reader { bytes += chunk.readableBytesView }
                return String(decoding: bytes, as: UTF8.self)
            }
            try await written
            #expect(output == "HELLO RELAY")
            #expect(try await h.waitForTerminal(run.id!).status == .succeeded)
            await #expect(throws: TygerRunEngineError.self) {
                try await h.engine.withEphemeralOutput(runId: run.id!, parameter: "output") { _ in }
            }
        }
    }

    @Test func restartMarksInFlightRunsFailed() async throws {
        let first = try Harness(sqlite: true)
        let id: Int64 = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.engine.run() }
            let run = try await first.engine.createRun(
                Run(
                    job: JobRunCodeTarget(
                        codespec: .inline(job(["bash", "-c", "echo $$ > pid; exec sleep 60"], outputs: ["out"]))
                    )
                )
            )
            #expect(try await first.waitForStatus(run.id!, .running).status == .running)
            // Let the process write its pid, then "crash": nothing more is persisted, the process keeps running.
            try await Task.sleep(for: .milliseconds(300))
            first.engine._simulateCrash()
            let record = try String(contentsOfFile: first.root + "/data/runs/\(run.id!)/processes", encoding: .utf8)
            let pid = try #require(Int32(record.split(separator: " ").first ?? ""))
            #expect(kill(pid, 0) == 0)
            let second = try Harness(root: first.root, sqlite: true)
            try await second.engine.recoverInterruptedRuns()
            let recovered = try await second.engine.getRun(id: run.id!)
            #expect(recovered.status == .failed)
            #expect(recovered.statusReason == RunLifecycle.Reason.serverRestarted)
            await #expect(throws: TygerCoreError.self) {
                _ = try await second.read(try #require(recovered.job.buffers?["out"]))
            }
            // The leftover process was killed (and reaped by the first engine's waiter).
            var alive = true
            for _ in 0..<100 where alive {
                alive = kill(pid, 0) == 0
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!alive)
            group.cancelAll()
            return run.id!
        }
        let reopened = try Harness(root: first.root, sqlite: true)
        #expect(try await reopened.engine.getRun(id: id).status == .failed)
    }
}
