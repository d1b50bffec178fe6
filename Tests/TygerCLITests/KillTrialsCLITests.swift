import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What a kill -9 trial kills.
enum Victim: String, CaseIterable, Sendable {
    case writer, reader, runExec, server
}

extension LiveServerCLITests {
    /// kill -9 of the writer, the reader, `run exec` and the server at seeded random points, over `file://`, the unix
    /// socket and TCP: `FaultSettings.trials` trials per path (20 in CI, more in `tools/faults`). Trial `i` uses seed
    /// `TYGER_FAULT_SEED + i`, printed with every failure. After every trial: no exit 0 with wrong or partial data, no
    /// wait longer than the bound, no leaked process, FIFO or temporary file, and the server still answers.
    @Suite(.serialized, .timeLimit(.minutes(30))) struct KillTrialsCLITests {
        /// The longest any step may wait: the lease and poll bounds are seconds; this is generous for a loaded machine.
        static let bound = Duration.seconds(60)
        /// How long a reader of a buffer that no writer began is watched to wait (it is killed afterwards).
        static let notBegunWait = Duration.seconds(2)

        @Test(arguments: TrialPath.allCases)
        func killNineTrials(path: TrialPath) async throws {
            var counts: [Victim: Int] = [:]
            try await FaultTrialEnvironment.with(path) { env in
                try await env.createCodespec()
                for i in 0..<FaultSettings.trials {
                    let seed = FaultSettings.seed &+ UInt64(i)
                    let salt = UInt64(TrialPath.allCases.firstIndex(of: path) ?? 0)
                    var g = FuzzGenerator(seed: seed &* 7919 &+ salt)
                    let victims: [Victim] = path == .local ? [.writer, .reader] : Victim.allCases
                    let victim = g.pick(victims)
                    let what = "\(path) trial \(i) seed \(seed) (\(victim))"
                    do {
                        try await trial(env, victim, &g, seed: seed, what: what)
                        counts[victim, default: 0] += 1
                    } catch {
                        Issue.record("\(what): \(error)")
                    }
                    #expect(await env.serverAnswers(), "\(what): the server does not answer")
                    let left = await env.leftoversAfterSettling()
                    #expect(left.isEmpty, "\(what): leftovers: \(left)")
                    for pid in env.processes(containing: env.marker) { kill(pid, SIGKILL) }
                }
            }
            let summary = Victim.allCases.map { "\($0.rawValue) \(counts[$0, default: 0])" }.joined(separator: ", ")
            FaultSettings.report(
                "kill -9 trials (\(path)): \(FaultSettings.trials) trials (\(summary))"
            )
        }

        /// One trial.
        private func trial(
            _ env: FaultTrialEnvironment,
            _ victim: Victim,
            _ g: inout FuzzGenerator,
            seed: UInt64,
            what: String
        ) async throws {
            let input = Payload.random(count: 1 + g.below(6 * 65536), seed: seed)
            switch victim {
            case .writer: try await killWriter(env, &g, input: input, what: what)
            case .reader: try await killReader(env, &g, input: input, what: what)
            case .runExec: try await killRunExec(env, &g, input: input, what: what)
            case .server: try await killServer(env, &g, input: input, what: what)
            }
        }

        /// A reader of a buffer that no writer began waits for one (as upstream's does): still running after
        /// ``notBegunWait``, when it is killed.
        /// A `file://` writer creates its buffer's folder: a reader that started before that (`mayNotExist`) fails at
        /// once saying the buffer does not exist, which is right too. A writer killed after it took the buffer's
        /// lease and before its `.bufferstart` leaves a lease that runs out: once it has (a loaded machine can take
        /// longer than the lease between the kill and this reader), the reader says the writer stopped, which is
        /// right as well.
        private func expectWaitingForAWriter(_ reader: ChildProcess, mayNotExist: Bool, _ what: String) async {
            let read = await reader.waitBounded(Self.notBegunWait)
            if let read, mayNotExist, read.exitCode == 1, read.stderrText.contains("the buffer does not exist") {
                return
            }
            if let read, read.exitCode == 1, read.stdout.isEmpty,
                read.stderrText.contains("the buffer's writer stopped without finishing it")
            {
                return
            }
            #expect(read == nil, "\(what): a buffer no writer began did not wait: \(read.map { "\($0)" } ?? "")")
        }

        /// Feeds `bytes` to the child's stdin from a thread of its own.
        private func feed(_ child: ChildProcess, _ bytes: [UInt8]) async {
            _ = try? await onThread { try child.writeStdin(bytes) }
        }

        /// A reader's outcome against the input: exit 0 only with all of it; otherwise at most a prefix of it.
        private func checkRead(_ read: ProcessResult, _ input: [UInt8], complete: Bool?, _ what: String) {
            if read.exitCode == 0 {
                #expect(mismatch(read.stdout, input) == nil, "\(what): exit 0 with wrong or partial data")
            } else {
                #expect(read.stdout.count <= input.count, "\(what): more output than input")
                #expect(mismatch(read.stdout, input.prefix(read.stdout.count)) == nil, "\(what): wrong data")
                #expect(complete != true, "\(what): a complete buffer failed to read: \(read)")
            }
        }

        private func killWriter(
            _ env: FaultTrialEnvironment,
            _ g: inout FuzzGenerator,
            input: [UInt8],
            what: String
        )
            async throws
        {
            let buffer = try await env.newBuffer()
            let writer = try env.start(
                ["buffer", "write", buffer, "--block-size", "64K", "--flush-interval", "50ms"],
                input: .pipe
            )
            let follower = g.oneIn(2) ? try env.start(["buffer", "read", buffer]) : nil
            let prefix = g.below(input.count + 1)
            await feed(writer, Array(input.prefix(prefix)))
            let closed = prefix == input.count && g.oneIn(2)
            if closed {
                writer.closeStdin()
            }
            try await Task.sleep(for: .milliseconds(g.below(300)))
            writer.signal(SIGKILL)
            let wrote = try #require(await writer.waitBounded(Self.bound), "\(what): the writer did not die")
            writer.closeStdin()
            let complete = wrote.exitCode == 0
            // Local and HTTP readers alike see the dead writer (its lease runs out) within the bound; a writer
            // killed before it began leaves a buffer whose readers wait for a writer.
            let began = env.writerBegan(buffer)
            let folderMissing = buffer.hasPrefix("file://") && !TestFiles.exists(String(buffer.dropFirst(7)))
            let reader = try env.start(["buffer", "read", buffer])
            for (name, process) in [("reader", Optional(reader)), ("follower", follower)] {
                guard let process else { continue }
                if !began {
                    // The follower started with the writer, maybe before the writer made the folder.
                    let mayNotExist = name == "reader" ? folderMissing : buffer.hasPrefix("file://")
                    await expectWaitingForAWriter(process, mayNotExist: mayNotExist, "\(what) \(name)")
                } else if let read = await process.waitBounded(Self.bound) {
                    checkRead(read, input, complete: complete, "\(what) \(name)")
                } else {
                    Issue.record("\(what): the \(name) still waited after \(Self.bound)")
                }
            }
        }

        private func killReader(
            _ env: FaultTrialEnvironment,
            _ g: inout FuzzGenerator,
            input: [UInt8],
            what: String
        )
            async throws
        {
            let buffer = try await env.newBuffer()
            let wrote = try await env.tyger(["buffer", "write", buffer, "--block-size", "64K"], input: .bytes(input))
            try #require(wrote.exitCode == 0, "\(what): \(wrote)")
            let output = env.directory + "/out"
            let reader = try env.start(["buffer", "read", buffer] + (g.oneIn(2) ? ["-o", output] : []))
            try await Task.sleep(for: .milliseconds(g.below(200)))
            reader.signal(SIGKILL)
            let killed = try #require(await reader.waitBounded(Self.bound), "\(what): the reader did not die")
            if killed.exitCode == 0 {
                let got = TestFiles.exists(output) ? try TestFiles.read(output) : killed.stdout
                #expect(mismatch(got, input) == nil, "\(what): exit 0 with wrong data")
            }
            unlink(output)
            let again = try await env.tyger(["buffer", "read", buffer], timeout: Self.bound)
            #expect(again.exitCode == 0, "\(what): a killed reader damaged the buffer: \(again)")
            checkRead(again, input, complete: true, what)
        }

        private func killRunExec(
            _ env: FaultTrialEnvironment,
            _ g: inout FuzzGenerator,
            input: [UInt8],
            what: String
        )
            async throws
        {
            let exec = try env.start(["run", "exec", "--codespec", "faultcat", "--timeout", "5m"], input: .pipe)
            let prefix = g.below(input.count + 1)
            let finish = g.oneIn(3)
            await feed(exec, Array(input.prefix(finish ? input.count : prefix)))
            if finish { exec.closeStdin() }
            try await Task.sleep(for: .milliseconds(g.below(finish ? 1500 : 400)))
            exec.signal(SIGKILL)
            let result = try #require(await exec.waitBounded(Self.bound), "\(what): run exec did not die")
            exec.closeStdin()
            if result.exitCode == 0 {
                #expect(mismatch(result.stdout, input) == nil, "\(what): run exec exit 0 with wrong data")
            }
            // The run goes on without its client: cancel it, and every process of it must be gone within the bound.
            let listed = try await env.tyger(["run", "list", "--limit", "1"])
            let runs = (try? JSONSerialization.jsonObject(with: Data(listed.stdout)) as? [[String: Any]]) ?? []
            if let run = runs.first, let id = run["id"].map({ "\($0)" }) {
                let status = run["status"] as? String ?? ""
                if !["Succeeded", "Failed", "Canceled"].contains(status) {
                    _ = try await env.tyger(["run", "cancel", id])
                }
                let ended = await eventually(timeout: Self.bound, every: .milliseconds(200)) {
                    let shown = try? await env.tyger(["run", "show", id])
                    let object = shown.flatMap {
                        try? JSONSerialization.jsonObject(with: Data($0.stdout)) as? [String: Any]
                    }
                    return ["Succeeded", "Failed", "Canceled"].contains(object?["status"] as? String ?? "")
                }
                #expect(ended, "\(what): run \(id) did not end after cancel")
            }
        }

        private func killServer(
            _ env: FaultTrialEnvironment,
            _ g: inout FuzzGenerator,
            input: [UInt8],
            what: String
        )
            async throws
        {
            let buffer = try await env.newBuffer()
            let writer = try env.start(
                ["buffer", "write", buffer, "--block-size", "64K", "--flush-interval", "50ms"],
                input: .pipe
            )
            let prefix = g.below(input.count + 1)
            let closeFirst = g.oneIn(3)
            await feed(writer, Array(input.prefix(closeFirst ? input.count : prefix)))
            if closeFirst { writer.closeStdin() }
            try await Task.sleep(for: .milliseconds(g.below(300)))
            try await env.killAndRestartServer()
            // The writer either finished before the kill or fails within the retry budget once its input ends.
            if !closeFirst {
                await feed(writer, Array(input.dropFirst(prefix)))
                writer.closeStdin()
            }
            let wrote = try #require(await writer.waitBounded(Self.bound), "\(what): the writer hung on a dead server")
            let complete = wrote.exitCode == 0
            // A writer that failed against a dead server left an unfinished buffer: its lease runs out and readers
            // report it abandoned within the bound. One that failed before it began (the restarted server listens on
            // another port) left a buffer whose readers wait for a writer.
            let reader = try env.start(["buffer", "read", buffer])
            if !env.writerBegan(buffer) {
                await expectWaitingForAWriter(reader, mayNotExist: false, what)
                return
            }
            guard let read = await reader.waitBounded(Self.bound) else {
                let shown = try? await env.tyger(["buffer", "show", buffer])
                Issue.record(
                    "\(what): the reader hung; writer \(wrote); buffer \(shown?.stdoutText ?? "?")"
                )
                return
            }
            checkRead(read, input, complete: complete, what)
            if complete { #expect(read.exitCode == 0, "\(what): the writer said 0, the reader \(read)") }
        }
    }
}
