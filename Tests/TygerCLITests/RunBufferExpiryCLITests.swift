import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// The buffers a run creates expire `--run-buffer-ttl` after the run ends (`TYGER_RUN_BUFFER_TTL` for the
    /// embedded server; `0` keeps them), unless the run's `job.bufferTtl` sets their expiry from its creation.
    @Suite(.timeLimit(.minutes(3))) struct RunBufferExpiryCLITests {
        private static let writerYAML = """
            name: writer
            image: ubuntu
            buffers:
              outputs: [output]
            command: [bash, -c, 'echo hi > "$OUTPUT_PIPE"']
            """

        /// Creates the writer codespec, runs it to the end and returns the run and its output buffer's ID.
        private static func finishedRun(
            _ home: CLIHome,
            _ extra: [String] = [],
            environment: String = ""
        ) async throws -> (run: [String: Any], output: String) {
            let codespec = home.path + "/writer.yml"
            try TestFiles.write(Array(writerYAML.utf8), to: codespec)
            let created = try await home.shell("\(environment) $TYGER codespec create -f \(codespec)")
            try #require(created.exitCode == 0, "\(created)")
            let id = try await home.output(["run", "create", "--codespec", "writer"] + extra)
            let watched = try await home.run(["run", "watch", id])
            try #require(watched.exitCode == 0, "\(watched)")
            let run = try object(try await home.json(["run", "show", id]))
            #expect(run["status"] as? String == "Succeeded", "\(run)")
            let buffers = try #require((run["job"] as? [String: Any])?["buffers"] as? [String: String], "\(run)")
            return (run, try #require(buffers["output"], "\(run)"))
        }

        private static func date(_ object: [String: Any], _ key: String) throws -> Date {
            try #require((object[key] as? String).flatMap(parseRFC3339), "\(key) in \(object)")
        }

        @Test(arguments: TestExecutor.available)
        func aFinishedRunsBuffersExpireAfterTheTTLAndArePurged(_ executor: TestExecutor) async throws {
            try await withTemporaryDirectory(prefix: "tyger-runttl") { dir in
                let data = dir + "/server"
                let settings = try await executor.serverSettings()
                let arguments =
                    ["--run-buffer-ttl", "10s", "--expiry-interval", "1s", "--soft-deleted-lifetime", "1s"]
                    + settings.arguments
                try await withServer(dataDirectory: data, arguments: arguments, environment: settings.environment) {
                    server in
                    try await withCLIHome { home in
                        let login = try await home.run(["login", "unix://" + server.socketPath])
                        try #require(login.exitCode == 0, "\(login)")
                        let (run, output) = try await Self.finishedRun(home)
                        #expect(try await settings.bufferDataExists(output, dataDirectory: data))
                        // Set by the time the run is seen finished: its end + the TTL.
                        let buffer = try object(try await home.json(["buffer", "show", output]))
                        let expected = try Self.date(run, "finishedAt").addingTimeInterval(10)
                        #expect(
                            abs(try Self.date(buffer, "expiresAt").timeIntervalSince(expected)) < 0.001,
                            "\(buffer)"
                        )

                        // Soft-deleted, then purged with its data.
                        #expect(
                            try await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
                                try await !settings.bufferDataExists(output, dataDirectory: data)
                            },
                            "the buffer's data was never purged"
                        )
                        let gone = try await home.run(["buffer", "show", output])
                        #expect(gone.exitCode == 1, "\(gone)")
                        #expect(gone.stderrText.contains("buffer '\(output)' not found"), "\(gone)")
                        let purged = try await home.run(["buffer", "show", output, "--soft-deleted"])
                        #expect(purged.exitCode == 1, "\(purged)")

                        // A run's job.bufferTtl counts from its creation and wins over the server's TTL.
                        let (own, ownOutput) = try await Self.finishedRun(home, ["--buffer-ttl", "0.01:00:00"])
                        let ownBuffer = try object(try await home.json(["buffer", "show", ownOutput]))
                        let ownExpected = try Self.date(own, "createdAt").addingTimeInterval(3600)
                        #expect(
                            abs(try Self.date(ownBuffer, "expiresAt").timeIntervalSince(ownExpected)) < 0.001,
                            "\(ownBuffer)"
                        )
                        // While a run lives, its buffers expire at creation + timeout + TTL (a bound it cannot
                        // outlive); a canceled run's at its end + TTL.
                        let sleeper = home.path + "/sleeper.yml"
                        let sleeperYAML = Self.writerYAML.replacingOccurrences(of: "writer", with: "sleeper")
                            .replacingOccurrences(of: #"'echo hi > "$OUTPUT_PIPE"'"#, with: "'sleep 60'")
                        try TestFiles.write(Array(sleeperYAML.utf8), to: sleeper)
                        _ = try await home.output(["codespec", "create", "-f", sleeper])
                        let live = try await home.output([
                            "run", "create", "--codespec", "sleeper", "--timeout", "100s",
                        ])
                        let liveRun = try object(try await home.json(["run", "show", live]))
                        let liveBuffers = try #require(
                            (liveRun["job"] as? [String: Any])?["buffers"] as? [String: String]
                        )
                        let liveOutput = try #require(liveBuffers["output"], "\(liveRun)")
                        let bound = try object(try await home.json(["buffer", "show", liveOutput]))
                        let boundExpected = try Self.date(liveRun, "createdAt").addingTimeInterval(110)
                        #expect(
                            abs(try Self.date(bound, "expiresAt").timeIntervalSince(boundExpected)) < 0.001,
                            "\(bound)"
                        )
                        _ = try await home.output(["run", "cancel", live])
                        _ = try await home.run(["run", "watch", live])
                        let canceled = try object(try await home.json(["run", "show", live]))
                        #expect(canceled["status"] as? String == "Canceled", "\(canceled)")
                        let ended = try object(try await home.json(["buffer", "show", liveOutput]))
                        let endExpected = try Self.date(canceled, "finishedAt").addingTimeInterval(10)
                        #expect(
                            abs(try Self.date(ended, "expiresAt").timeIntervalSince(endExpected)) < 0.001,
                            "\(ended)"
                        )
                        // A buffer given as an argument is the user's: never touched.
                        let mine = try await home.output(["buffer", "create"])
                        _ = try await Self.finishedRun(home, ["--buffer", "output=\(mine)"])
                        let mineShown = try object(try await home.json(["buffer", "show", mine]))
                        #expect(mineShown["expiresAt"] == nil, "\(mineShown)")
                    }
                }
            }
        }

        @Test(arguments: TestExecutor.available)
        func theEmbeddedServerKeeps24HoursByDefaultAndForeverWithZero(_ executor: TestExecutor) async throws {
            try await withCLIHome(environment: try await executor.environment()) { home in
                let (run, output) = try await Self.finishedRun(home)
                let buffer = try object(try await home.json(["buffer", "show", output]))
                let expected = try Self.date(run, "finishedAt").addingTimeInterval(86_400)
                #expect(abs(try Self.date(buffer, "expiresAt").timeIntervalSince(expected)) < 0.001, "\(buffer)")
            }
            try await withCLIHome(environment: try await executor.environment()) { home in
                // The variable reaches the embedded server the first command starts.
                let (_, output) = try await Self.finishedRun(home, environment: "TYGER_RUN_BUFFER_TTL=0")
                let buffer = try object(try await home.json(["buffer", "show", output]))
                #expect(buffer["expiresAt"] == nil, "0 keeps the buffers: \(buffer)")
            }
        }
    }
}
