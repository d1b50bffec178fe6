import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Several `tyger-server run` processes on one PostgreSQL database, their buffers in one S3 bucket: each sees what
/// the others create, a run is supervised by the server that created it, a cancel made on another server reaches it,
/// and the runs of a server that stops are failed by another one instead of staying Running for ever.
@Suite(
    .timeLimit(.minutes(3)),
    .enabled(if: PostgresTestDatabase.adminURL != nil && S3TestStore.settings != nil)
)
struct MultiServerCLITests {
    /// A shared database and bucket, and the settings of a server on them (with a 3-s owner lease).
    struct Deployment {
        let database: String
        let store: String
        let environment: [String: String]
        let directory: String

        /// A new directory `<directory>/<name>` for a test's files.
        func workDirectory(_ name: String) throws -> String {
            let path = directory + "/" + name
            try TestFiles.makeDirectory(path)
            return path
        }

        var arguments: [String] { ["--executor", "process", "--database", database, "--blob-store", store] }

        /// Starts server `name` (its data directory under ``directory``), on TCP too with `tcp`.
        func start(_ name: String, tcp: Bool = false) async throws -> ServerProcess {
            try await ServerProcess.start(
                dataDirectory: directory + "/" + name,
                arguments: arguments + (tcp ? ["--tcp", "127.0.0.1:0"] : []),
                environment: environment
            )
        }
    }

    func withDeployment(_ body: (Deployment) async throws -> Void) async throws {
        let settings = try #require(S3TestStore.settings)
        let (bucket, endpoint) = try await settings.makeBucket("multi")
        let database = try await PostgresTestDatabase.createEmpty()
        try await withTemporaryDirectory(prefix: "tyger-multi") { dir in
            try await body(
                Deployment(
                    database: database,
                    store: "s3://\(bucket)/buffers?endpoint=\(endpoint)",
                    // Cancels, watches and log follows go by the database's notices: the looks behind them come only
                    // every 300 s here, longer than any wait of these tests.
                    environment: settings.credentialsEnvironment.merging(
                        ["TYGER_TEST_OWNER_LEASE": "3", "TYGER_TEST_NOTIFIED_POLL": "300"]
                    ) { $1 },
                    directory: dir
                )
            )
        }
    }

    /// Runs `body` with a home logged in to each server.
    func withHomes(
        _ a: ServerProcess,
        _ b: ServerProcess,
        _ body: (CLIHome, CLIHome) async throws -> Void
    ) async throws {
        try await withCLIHome { homeA in
            try await withCLIHome { homeB in
                _ = try await homeA.output(["login", "unix://" + a.socketPath])
                _ = try await homeB.output(["login", "unix://" + b.socketPath])
                try await body(homeA, homeB)
            }
        }
    }

    /// Creates the waiting codespec (below) in `dir` and starts a run of it through `home`; returns the run's ID.
    func startWaitingRun(in dir: String, through home: CLIHome) async throws -> String {
        try await createWaitingCodespec(in: home, dir: dir)
        return try await home.output(["run", "create", "--codespec", "wait"])
    }

    /// A codespec whose process writes its PID to `<dir>/pid` and waits until `<dir>/go` exists.
    func createWaitingCodespec(in home: CLIHome, dir: String) async throws {
        let spec = dir + "/wait.yml"
        try TestFiles.write(
            Array(
                """
                kind: job
                name: wait
                image: local
                command: [sh, -c, 'echo $$ > \(dir)/pid; while [ ! -e \(dir)/go ]; do sleep 0.1; done']

                """.utf8
            ),
            to: spec
        )
        _ = try await home.output(["codespec", "create", "-f", spec])
    }

    func status(_ home: CLIHome, _ id: String) async throws -> [String: Any] {
        try object(try await home.json(["run", "show", id]))
    }

    /// Waits up to a minute for run `id` to have status `wanted`, as `home`'s server shows it; records an issue when
    /// it never does. Returns the run as last shown.
    @discardableResult
    func waitForStatus(_ home: CLIHome, _ id: String, _ wanted: String) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        _ = try await eventually(timeout: .seconds(60), every: .milliseconds(300)) {
            guard let shown = try? await status(home, id) else { return false }
            last = shown
            return shown["status"] as? String == wanted
        }
        #expect(last["status"] as? String == wanted, "\(last)")
        return last
    }

    @Test func serversOnOneDatabaseShareBuffersRunsAndCancels() async throws {
        try await withDeployment { deployment in
            let a = try await deployment.start("a")
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b")
            defer { b.process.signal(SIGKILL) }
            try await withHomes(a, b) { homeA, homeB in
                // A buffer written through one server reads back through the other.
                let buffer = try await homeA.output(["buffer", "create"])
                let written = try await homeA.shell("echo shared | $TYGER buffer write \(buffer)")
                #expect(written.exitCode == 0, "\(written)")
                #expect(try await homeB.output(["buffer", "read", buffer]) == "shared")

                // A run created on A is seen Running from B; B's cancel reaches A, which stops the process.
                let work = try deployment.workDirectory("cancel")
                let id = try await startWaitingRun(in: work, through: homeA)
                try await waitForStatus(homeB, id, "Running")
                let canceled = try await homeB.run(["run", "cancel", id])
                #expect(canceled.exitCode == 0, "\(canceled)")
                try await waitForStatus(homeA, id, "Canceled")
                let pid = try #require(Int32(try String(contentsOfFile: work + "/pid", encoding: .utf8).trimmed))
                #expect(
                    await eventually(timeout: .seconds(60)) { kill(pid, 0) != 0 },
                    "the run's process lives on; A's log ends:\n\(a.log.suffix(6000))"
                )

                // `run watch` on B follows a run that A supervises to its end.
                let second = try deployment.workDirectory("watch")
                let watched = try await startWaitingRun(in: second, through: homeA)
                try await waitForStatus(homeB, watched, "Running")
                let watcher = try homeB.start(["run", "watch", watched])
                try TestFiles.write([], to: second + "/go")
                let result = try await watcher.wait(timeout: .seconds(60))
                #expect(result.exitCode == 0, "\(result)")
                #expect(result.stdoutText.contains("Succeeded"), "\(result)")
            }
        }
    }

    @Test func theLogOfARunOnOneServerIsReadAndFollowedOnAnother() async throws {
        try await withDeployment { deployment in
            let a = try await deployment.start("a")
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b")
            defer { b.process.signal(SIGKILL) }
            let work = try deployment.workDirectory("talk")
            try await withHomes(a, b) { homeA, homeB in
                let spec = work + "/talk.yml"
                try TestFiles.write(
                    Array(
                        """
                        kind: job
                        name: talk
                        image: local
                        command:
                          - sh
                          - -c
                          - 'for i in 1 2 3; do echo line $i; done; while [ ! -e \(work)/go ]; do sleep 0.1; done; echo last'

                        """.utf8
                    ),
                    to: spec
                )
                _ = try await homeA.output(["codespec", "create", "-f", spec])
                let id = try await homeA.output(["run", "create", "--codespec", "talk"])
                try await waitForStatus(homeB, id, "Running")
                // What A has shipped so far reads on B while the run goes on, and B follows the rest.
                #expect(
                    await eventually(timeout: .seconds(60), every: .milliseconds(300)) {
                        (try? await homeB.output(["run", "logs", id])) == "line 1\nline 2\nline 3"
                    }
                )
                let follower = try homeB.start(["run", "logs", id, "--follow"])
                try await Task.sleep(for: .seconds(1))
                try TestFiles.write([], to: work + "/go")
                let followed = try await follower.wait(timeout: .seconds(60))
                #expect(followed.exitCode == 0, "\(followed)")
                #expect(followed.stdoutText == "line 1\nline 2\nline 3\nlast\n", "\(followed)")
                try await waitForStatus(homeA, id, "Succeeded")

                // Once A is gone, a server that never saw the run serves its whole log.
                _ = try await a.stop()
                let c = try await deployment.start("c")
                defer { c.process.signal(SIGKILL) }
                try await withCLIHome { homeC in
                    _ = try await homeC.output(["login", "unix://" + c.socketPath])
                    let read = try await homeC.run(["run", "logs", id, "--timestamps"])
                    #expect(read.exitCode == 0, "\(read)")
                    let lines = read.stdoutText.split(separator: "\n")
                    #expect(
                        lines.map { $0.split(separator: " ", maxSplits: 1).last ?? "" } == [
                            "line 1", "line 2", "line 3", "last",
                        ],
                        "\(read)"
                    )
                }
            }
        }
    }

    @Test func aServerCutOffFromTheDatabaseStopsTheRunsAnotherTookOver() async throws {
        try await withDeployment { deployment in
            // A reaches the database through a relay the test cuts; B directly.
            let (relay, relayed) = try TCPRelay.forDatabase(deployment.database)
            defer { relay.stop() }
            let a = try await ServerProcess.start(
                dataDirectory: deployment.directory + "/a",
                arguments: ["--executor", "process", "--database", relayed, "--blob-store", deployment.store],
                environment: deployment.environment
            )
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b")
            defer { b.process.signal(SIGKILL) }
            let work = try deployment.workDirectory("cut")
            defer { try? TestFiles.write([], to: work + "/go") }
            try await withHomes(a, b) { homeA, homeB in
                let id = try await startWaitingRun(in: work, through: homeA)
                try await waitForStatus(homeB, id, "Running")
                let pid = try #require(Int32(try String(contentsOfFile: work + "/pid", encoding: .utf8).trimmed))

                relay.cut()
                let failed = try await waitForStatus(homeB, id, "Failed")
                let reason = failed["statusReason"] as? String ?? ""
                #expect(reason.contains("The server running it (instance"), "\(failed)")
                #expect(kill(pid, 0) == 0, "A stopped the run's process while it could not reach the database")

                // Back on the database, A learns the run is no longer its own: it stops the process and leaves the
                // record as B wrote it.
                relay.restore()
                #expect(
                    await eventually(timeout: .seconds(60)) { kill(pid, 0) != 0 },
                    "the run's process lives on; A's log ends:\n\(a.log.suffix(6000))"
                )
                try await Task.sleep(for: .seconds(2))
                let final = try await status(homeB, id)
                #expect(final["status"] as? String == "Failed", "\(final)")
                #expect(final["statusReason"] as? String == reason, "\(final)")
            }
        }
    }

    @Test func serversOnOneDatabaseAcceptTheSameTokensAndAccessURLs() async throws {
        try await withDeployment { deployment in
            let dirA = deployment.directory + "/a"
            let dirB = deployment.directory + "/b"
            // A token made in a data directory before its server joined the database is copied there at start.
            let old = try await TygerServerBinary.createToken(dataDirectory: dirA)
            let created = try await TygerServerBinary.run(
                ["token", "create", "--database", deployment.database, "--name", "team"]
            )
            #expect(created.exitCode == 0, "\(created)")
            let token = created.stdoutText.trimmed
            let a = try await deployment.start("a", tcp: true)
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b", tcp: true)
            defer { b.process.signal(SIGKILL) }
            let endpointA = try #require(a.tcpEndpoint)
            let endpointB = try #require(b.tcpEndpoint)
            #expect(TestFiles.exists(dirA + "/tokens.json.imported"))
            #expect(!TestFiles.exists(dirA + "/tokens.json"))

            for (endpoint, secret) in [(endpointA, old), (endpointB, old), (endpointA, token), (endpointB, token)] {
                try await withCLIHome { home in
                    let login = try await home.run(["login", endpoint, "--token", secret])
                    #expect(login.exitCode == 0, "\(endpoint): \(login)")
                }
            }

            // A URL one server signs is accepted by the other.
            try await withCLIHome { home in
                _ = try await home.output(["login", endpointA, "--token", token])
                let id = try await home.output(["buffer", "create"])
                let written = try await home.shell("echo across | $TYGER buffer write \(id)")
                #expect(written.exitCode == 0, "\(written)")
                let url = try await home.output(["buffer", "access", id])
                #expect(url.hasPrefix(endpointA), "\(url)")
                let moved = url.replacingOccurrences(of: endpointA, with: endpointB)
                let read = try await home.run(["buffer", "read", moved])
                #expect(read.exitCode == 0, "\(read)")
                #expect(read.stdoutText == "across\n", "\(read)")
            }

            // Both servers' data directories give the database's key.
            var keys: [String] = []
            for dir in [dirA, dirB] {
                let key = try await TygerServerBinary.run(
                    ["signing-key", "--data-dir", dir, "--database", deployment.database]
                )
                #expect(key.exitCode == 0, "\(key)")
                keys.append(key.stdoutText)
            }
            #expect(keys[0] == keys[1] && keys[0].contains("BEGIN PUBLIC KEY"), "\(keys)")
            let rotated = try await TygerServerBinary.run(
                ["signing-key", "--data-dir", dirA, "--database", deployment.database, "--rotate"]
            )
            #expect(rotated.exitCode == 0 && rotated.stdoutText != keys[0], "\(rotated)")

            // A token revoked in the database stops working on both servers at once.
            let listed = try await TygerServerBinary.run(["token", "list", "--database", deployment.database])
            let line = try #require(listed.stdoutText.split(separator: "\n").first { $0.hasSuffix("\tteam") })
            let revoked = try await TygerServerBinary.run(
                ["token", "revoke", "--database", deployment.database, String(line.split(separator: "\t")[0])]
            )
            #expect(revoked.exitCode == 0, "\(revoked)")
            for endpoint in [endpointA, endpointB] {
                try await withCLIHome { home in
                    let login = try await home.run(["login", endpoint, "--token", token])
                    #expect(login.exitCode == 1, "\(endpoint): \(login)")
                    #expect(login.stderrText.contains("Unauthorized"), "\(login)")
                }
            }
            let both = try await TygerServerBinary.run(
                ["token", "list", "--data-dir", dirA, "--database", deployment.database]
            )
            #expect(both.exitCode == 64, "\(both)")
        }
    }

    @Test func theEphemeralBuffersOfARunOnOneServerAreRelayedThereThroughAnother() async throws {
        try await withDeployment { deployment in
            let created = try await TygerServerBinary.run(["token", "create", "--database", deployment.database])
            let token = created.stdoutText.trimmed
            let a = try await deployment.start("a", tcp: true)
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b", tcp: true)
            defer { b.process.signal(SIGKILL) }
            let endpointA = try #require(a.tcpEndpoint)
            let endpointB = try #require(b.tcpEndpoint)
            try await withCLIHome { homeA in
                try await withCLIHome { homeB in
                    _ = try await homeA.output(["login", endpointA, "--token", token])
                    _ = try await homeB.output(["login", endpointB, "--token", token])
                    let spec = deployment.directory + "/hello.yml"
                    try TestFiles.write(Array(helloYAML.utf8), to: spec)
                    _ = try await homeA.output(["codespec", "create", "-f", spec])
                    let id = try await homeA.output([
                        "run", "create", "--codespec", "hello", "--buffer", "input=_", "--buffer", "output=_",
                    ])
                    let run = try object(try await homeB.json(["run", "show", id]))
                    let buffers = try #require((run["job"] as? [String: Any])?["buffers"] as? [String: String])
                    let input = try #require(buffers["input"])
                    let output = try #require(buffers["output"])
                    // B hands out URLs of A's relay, signed with the key the servers share.
                    let write = try await homeB.output(["buffer", "access", input, "-w"])
                    let read = try await homeB.output(["buffer", "access", output])
                    #expect(write.hasPrefix(endpointA + "/relay/"), "\(write)")
                    #expect(read.hasPrefix(endpointA + "/relay/"), "\(read)")
                    let written = try await homeB.shell("echo Relay | $TYGER buffer write '\(write)'")
                    #expect(written.exitCode == 0, "\(written)")
                    let answer = try await homeB.run(["buffer", "read", read])
                    #expect(answer.exitCode == 0, "\(answer)")
                    #expect(answer.stdoutText == "Hello Relay\n", "\(answer)")
                    try await waitForStatus(homeB, id, "Succeeded")
                }
            }
        }
    }

    @Test func aStartingServerLeavesTheRunsOfALiveOneAlone() async throws {
        try await withDeployment { deployment in
            let a = try await deployment.start("a")
            defer { a.process.signal(SIGKILL) }
            try await withCLIHome { homeA in
                _ = try await homeA.output(["login", "unix://" + a.socketPath])
                let work = try deployment.workDirectory("live")
                let id = try await startWaitingRun(in: work, through: homeA)
                try await waitForStatus(homeA, id, "Running")
                // B starts, recovers leftovers and sweeps for stopped servers for more than two owner leases.
                let b = try await deployment.start("b")
                defer { b.process.signal(SIGKILL) }
                try await Task.sleep(for: .seconds(8))
                let shown = try await status(homeA, id)
                #expect(shown["status"] as? String == "Running", "\(shown)")
                try TestFiles.write([], to: work + "/go")
                try await waitForStatus(homeA, id, "Succeeded")
            }
        }
    }

    @Test func theRunsOfAServerThatDiesAreFailedByAnother() async throws {
        try await withDeployment { deployment in
            let a = try await deployment.start("a")
            defer { a.process.signal(SIGKILL) }
            let b = try await deployment.start("b")
            defer { b.process.signal(SIGKILL) }
            let work = try deployment.workDirectory("dies")
            // The process A started outlives A: let it end with the test.
            defer { try? TestFiles.write([], to: work + "/go") }
            try await withHomes(a, b) { homeA, homeB in
                let id = try await startWaitingRun(in: work, through: homeA)
                try await waitForStatus(homeB, id, "Running")
                a.process.signal(SIGKILL)
                _ = try await a.process.wait(timeout: .seconds(30))
                let failed = try await waitForStatus(homeB, id, "Failed")
                let reason = failed["statusReason"] as? String ?? ""
                #expect(reason.contains("The server running it (instance"), "\(failed)")
                #expect(reason.contains("stopped"), "\(failed)")
            }
        }
    }

    @Test func aServerWithBuffersOnItsOwnDiskKeepsTheDatabaseToItself() async throws {
        try await withDeployment { deployment in
            let shared = try await deployment.start("shared")
            defer { shared.process.signal(SIGKILL) }
            let local = try await TygerServerBinary.run(
                ["run", "--data-dir", deployment.directory + "/local", "--database", deployment.database],
                timeout: .seconds(60)
            )
            #expect(local.exitCode == 1, "\(local)")
            #expect(local.stderrText.contains("another tyger-server uses the database"), "\(local)")
            #expect(local.stderrText.contains("only when their buffers live in an S3 store"), "\(local)")
            _ = try await shared.stop()

            try await withServer(
                dataDirectory: deployment.directory + "/alone",
                arguments: ["--database", deployment.database]
            ) { _ in
                let refused = try await TygerServerBinary.run(
                    ["run", "--data-dir", deployment.directory + "/second"] + deployment.arguments,
                    environment: deployment.environment,
                    timeout: .seconds(60)
                )
                #expect(refused.exitCode == 1, "\(refused)")
                #expect(
                    refused.stderrText.contains("whose buffers are on its own disk uses the database"),
                    "\(refused)"
                )
            }
        }
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
