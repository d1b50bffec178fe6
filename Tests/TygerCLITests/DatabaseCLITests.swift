import Foundation
import Testing
import TygerTestSupport

/// `tyger-server run --database postgres://…`: the run-engine CLI tests run on it (`TestExecutor.postgres`); these
/// cover what only a database server has.
@Suite(.timeLimit(.minutes(2)), .enabled(if: PostgresTestDatabase.adminURL != nil))
struct DatabaseCLITests {
    /// A second server whose buffers are on its own disk, on a database another server uses, is refused at start,
    /// naming the database (servers share a database when their buffers live in S3: `MultiServerCLITests`).
    @Test func aSecondServerOnOneDatabaseIsRefused() async throws {
        let url = try await PostgresTestDatabase.createEmpty()
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            try await withServer(dataDirectory: dir + "/one", arguments: ["--database", url]) { _ in
                let second = try await TygerServerBinary.run(
                    ["run", "--data-dir", dir + "/two", "--database", url],
                    timeout: .seconds(60)
                )
                #expect(second.exitCode == 1, "\(second)")
                #expect(second.stderrText.contains("another tyger-server uses the database"), "\(second)")
            }
        }
    }

    /// The lock that keeps a second server off lives on one connection: when it breaks, the server takes the lock
    /// again; when another server took it meanwhile, this one stops (exit 1) instead of sharing the database.
    @Test func aServerTakesItsLockAgainOrStopsWhenAnotherTookIt() async throws {
        let url = try await PostgresTestDatabase.createEmpty()
        let (relay, relayed) = try TCPRelay.forDatabase(url)
        defer { relay.stop() }
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            let first = try await ServerProcess.start(dataDirectory: dir + "/one", arguments: ["--database", relayed])
            defer { first.process.signal(SIGKILL) }
            // Once its run engine has started (a cut before that is another test's matter).
            #expect(await eventually(timeout: .seconds(60)) { first.log.contains("ready to run") }, "\(first.log)")
            relay.cut()
            try await Task.sleep(for: .seconds(3))
            relay.restore()
            #expect(
                await eventually(timeout: .seconds(60)) { first.log.contains("took the database's server lock again") },
                "\(first.log)"
            )

            relay.cut()
            try await Task.sleep(for: .seconds(1))
            try await withServer(dataDirectory: dir + "/two", arguments: ["--database", url]) { _ in
                relay.restore()
                let stopped = try await first.process.wait(timeout: .seconds(60))
                #expect(stopped.exitCode == 1, "\(stopped)")
                #expect(first.log.contains("another tyger-server took the database"), "\(first.log)")
            }
        }
    }

    /// A database URL that is malformed, or names a database that is not there: one line, exit 1, no server.
    @Test func badDatabasesStopTheServerWithOneLine() async throws {
        let admin = try #require(PostgresTestDatabase.adminURL)
        let missing = String(admin[..<admin.lastIndex(of: "/")!]) + "/no_such_database"
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            for (url, message) in [
                ("mysql://u@h/db", "invalid database URL"),
                (missing, "no_such_database"),
            ] {
                let started = ContinuousClock.now
                let result = try await TygerServerBinary.run(
                    ["run", "--data-dir", dir + "/data", "--database", url],
                    timeout: .seconds(90)
                )
                // The server said no at once: nothing to wait for.
                #expect(ContinuousClock.now - started < .seconds(30), "\(url): \(ContinuousClock.now - started)")
                #expect(result.exitCode == 1, "\(result)")
                #expect(result.stderrText.contains(message), "\(result)")
                #expect(
                    result.stderrText.split(separator: "\n").filter { $0.contains("critical") }.count == 1,
                    "\(result)"
                )
            }
        }
    }
}

/// The database going away under a running server (a relay the test cuts, between the server and the test cluster):
/// requests are answered 503 within seconds, naming the database, and the server serves again once it is back,
/// without a restart.
@Suite(.timeLimit(.minutes(2)), .enabled(if: PostgresTestDatabase.adminURL != nil))
struct DatabaseOutageCLITests {
    /// Runs `body` with a home logged in to a server whose database (a new one in the test cluster) it reaches through
    /// `relay`, which the test cuts and restores.
    func withRelayedDatabase(_ body: (_ home: CLIHome, _ relay: TCPRelay) async throws -> Void) async throws {
        let url = try await PostgresTestDatabase.createEmpty()
        let (relay, relayed) = try TCPRelay.forDatabase(url)
        defer { relay.stop() }
        try await withTemporaryDirectory(prefix: "tyger-db") { dir in
            try await withServer(dataDirectory: dir + "/data", arguments: ["--database", relayed]) { server in
                try await withCLIHome { home in
                    _ = try await home.output(["login", "unix://" + server.socketPath])
                    try await body(home, relay)
                }
            }
        }
    }

    @Test func requestsFailWith503WhileTheDatabaseIsAwayAndSucceedWhenItIsBack() async throws {
        try await withRelayedDatabase { home, relay in
            let before = try await home.output(["buffer", "create"])

            relay.cut()
            let started = ContinuousClock.now
            for arguments in [["buffer", "create"], ["buffer", "show", before], ["run", "list"]] {
                let refused = try await home.run(arguments)
                #expect(refused.exitCode == 1, "\(refused)")
                #expect(
                    refused.stderrText.contains("ServiceUnavailable: The database cannot be reached"),
                    "\(arguments): \(refused)"
                )
            }
            #expect(ContinuousClock.now - started < .seconds(30), "\(ContinuousClock.now - started)")

            relay.restore()
            #expect(
                try await eventually(timeout: .seconds(30), every: .milliseconds(500)) {
                    try await home.run(["buffer", "show", before]).exitCode == 0
                },
                "the server never served again"
            )
            let after = try await home.output(["buffer", "create"])
            let written = try await home.shell("echo hello | $TYGER buffer write \(after)")
            #expect(written.exitCode == 0, "\(written)")
            #expect(try await home.output(["buffer", "read", after]) == "hello")
        }
    }

    /// A run that ends while the database is away is not lost: its end is recorded once the database is back.
    @Test func aRunThatEndsDuringAnOutageIsRecordedAfterIt() async throws {
        try await withRelayedDatabase { home, relay in
            // The run ends when the test says so (a file appears), and says when it has ended (another file): the
            // end falls inside the outage however slowly a loaded machine runs the steps around it.
            let go = home.path + "/go"
            let ended = home.path + "/ended"
            let spec = home.path + "/nap.yml"
            try TestFiles.write(
                Array(
                    """
                    kind: job
                    name: nap
                    image: local
                    command: [sh, -c, 'while [ ! -e \(go) ]; do sleep 0.1; done; touch \(ended)']

                    """.utf8
                ),
                to: spec
            )
            _ = try await home.output(["codespec", "create", "-f", spec])
            let id = try await home.output(["run", "create", "--codespec", "nap"])
            #expect(
                try await eventually(timeout: .seconds(60)) {
                    try object(try await home.json(["run", "show", id]))["status"] as? String == "Running"
                }
            )
            relay.cut()
            try TestFiles.write([], to: go)
            #expect(await eventually(timeout: .seconds(60)) { TestFiles.exists(ended) })
            try await Task.sleep(for: .seconds(2))  // the server sees the process end and fails to store it
            relay.restore()
            var last: [String: Any] = [:]
            #expect(
                try await eventually(timeout: .seconds(60), every: .milliseconds(500)) {
                    guard let shown = try? object(try await home.json(["run", "show", id])) else {
                        return false
                    }
                    last = shown
                    return shown["status"] as? String == "Succeeded"
                },
                "\(last)"
            )
            let runs = try await home.json(["run", "list"]) as? [Any]
            #expect(runs?.count == 1, "\(runs ?? [])")
        }
    }
}
