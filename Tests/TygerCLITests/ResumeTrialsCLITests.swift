import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

extension LiveServerCLITests {
    /// Transfers killed with SIGKILL at seeded random points, then finished: `buffer write --resume` (from a file,
    /// which is positioned, and from a pipe, whose bytes are checked), `buffer read -o FILE --resume` and
    /// `--offset`, and `run exec --attach` after a killed `run exec`. Every finished transfer must give exactly the
    /// input's bytes. Over `file://`, the unix socket and TCP; trial `i` uses seed `TYGER_FAULT_SEED + i`.
    @Suite(.serialized, .timeLimit(.minutes(20))) struct ResumeTrialsCLITests {
        static let trials = 4
        static let bound = Duration.seconds(60)

        @Test(arguments: TrialPath.allCases)
        func killedWritesResumeToTheSameBytes(path: TrialPath) async throws {
            try await FaultTrialEnvironment.with(path) { env in
                for i in 0..<Self.trials {
                    let seed = FaultSettings.seed &+ UInt64(i)
                    var g = FuzzGenerator(seed: seed &* 104_729 &+ UInt64(path.rawValue.count))
                    let fromFile = i.isMultiple(of: 2)
                    let what = "\(path) trial \(i) seed \(seed) (\(fromFile ? "file" : "pipe"))"
                    let input = Payload.random(count: 65536 + g.below(12 * 65536), seed: seed)
                    let buffer = try await env.newBuffer()
                    let writer = try env.start(
                        ["buffer", "write", buffer, "--block-size", "64K", "--flush-interval", "50ms"],
                        input: .pipe
                    )
                    let sent = Array(input.prefix(g.below(input.count)))
                    _ = try? await onThread { try writer.writeStdin(sent) }
                    try await Task.sleep(for: .milliseconds(100 + g.below(300)))
                    writer.signal(SIGKILL)
                    _ = try #require(await writer.waitBounded(Self.bound), "\(what): the writer did not die")
                    writer.closeStdin()
                    let resumed: ProcessResult
                    if fromFile {
                        let file = env.directory + "/input-\(i)"
                        try TestFiles.write(input, to: file)
                        resumed = try await env.tyger(["buffer", "write", "--resume", buffer, "-i", file])
                    } else {
                        resumed = try await env.tyger(["buffer", "write", "--resume", buffer], input: .bytes(input))
                    }
                    #expect(resumed.exitCode == 0, "\(what): \(resumed)")
                    #expect(resumed.stderrText.contains("resumedAt="), "\(what): \(resumed)")
                    let read = try await env.tyger(["buffer", "read", buffer], timeout: Self.bound)
                    #expect(read.exitCode == 0, "\(what): \(read)")
                    #expect(mismatch(read.stdout, input) == nil, "\(what): the resumed buffer differs from the input")
                }
            }
        }

        @Test(arguments: TrialPath.allCases)
        func killedReadsResumeToTheSameBytes(path: TrialPath) async throws {
            try await FaultTrialEnvironment.with(path) { env in
                for i in 0..<Self.trials {
                    let seed = FaultSettings.seed &+ UInt64(i)
                    var g = FuzzGenerator(seed: seed &* 7919 &+ UInt64(path.rawValue.count))
                    let what = "\(path) trial \(i) seed \(seed)"
                    let input = Payload.random(count: 1 + g.below(40 << 20), seed: seed)
                    let buffer = try await env.newBuffer()
                    let wrote = try await env.tyger(
                        ["buffer", "write", buffer, "--block-size", "1M"],
                        input: .bytes(input),
                        timeout: Self.bound
                    )
                    try #require(wrote.exitCode == 0, "\(what): \(wrote)")
                    let output = env.directory + "/out-\(i)"
                    let reader = try env.start(["buffer", "read", buffer, "-o", output, "--dop", "2"])
                    try await Task.sleep(for: .milliseconds(g.below(400)))
                    reader.signal(SIGKILL)
                    _ = try #require(await reader.waitBounded(Self.bound), "\(what): the reader did not die")
                    let again = try await env.tyger(
                        ["buffer", "read", buffer, "-o", output, "--resume"],
                        timeout: Self.bound
                    )
                    #expect(again.exitCode == 0, "\(what): \(again)")
                    #expect(mismatch(try TestFiles.read(output), input) == nil, "\(what): the resumed read differs")
                    let offset = g.below(input.count + 1)
                    let tail = try await env.tyger(["buffer", "read", buffer, "--offset", "\(offset)"])
                    #expect(tail.exitCode == 0, "\(what): \(tail)")
                    #expect(mismatch(tail.stdout, Array(input[offset...])) == nil, "\(what): --offset \(offset)")
                }
            }
        }

        @Test(arguments: [TrialPath.unixSocket, .tcp])
        func aKilledRunExecIsFinishedByAttaching(path: TrialPath) async throws {
            try await FaultTrialEnvironment.with(path) { env in
                try await env.createCodespec()
                for i in 0..<2 {
                    let seed = FaultSettings.seed &+ UInt64(i)
                    var g = FuzzGenerator(seed: seed &* 31 &+ UInt64(path.rawValue.count))
                    let what = "\(path) trial \(i) seed \(seed)"
                    let input = Payload.random(count: 65536 + g.below(12 * 65536), seed: seed)
                    let output = env.directory + "/exec-out-\(i)"
                    let exec = try env.start(
                        ["run", "exec", "--codespec", "faultcat", "--block-size", "64K", "-o", output, "-q"],
                        input: .pipe
                    )
                    let sent = Array(input.prefix(g.below(input.count)))
                    _ = try? await onThread { try exec.writeStdin(sent) }
                    try await Task.sleep(for: .milliseconds(300 + g.below(300)))
                    exec.signal(SIGKILL)
                    _ = try #require(await exec.waitBounded(Self.bound), "\(what): run exec did not die")
                    exec.closeStdin()
                    let listed = try await env.tyger(["run", "list", "--limit", "1"])
                    let runs = try #require(
                        try JSONSerialization.jsonObject(with: Data(listed.stdout)) as? [[String: Any]]
                    )
                    let id = try #require(runs.first?["id"].map { "\($0)" }, "\(what): \(listed)")
                    let attached = try await env.tyger(
                        ["run", "exec", "--attach", id, "-o", output, "-q"],
                        input: .bytes(input),
                        timeout: Self.bound
                    )
                    #expect(attached.exitCode == 0, "\(what): \(attached)")
                    #expect(mismatch(try TestFiles.read(output), input) == nil, "\(what): the attached output differs")
                }
                // A detached run: nothing moves until it is attached.
                let detached = try await env.tyger(["run", "exec", "--codespec", "faultcat", "--detach"])
                #expect(detached.exitCode == 0, "\(detached)")
                let id = detached.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(Int(id) != nil, "\(detached)")
                let input = Payload.random(count: 100_000, seed: 77)
                let attached = try await env.tyger(["run", "exec", "--attach", id], input: .bytes(input))
                #expect(attached.exitCode == 0, "\(attached)")
                #expect(mismatch(attached.stdout, input) == nil, "the detached run's output differs from its input")
            }
        }
    }
}
