import Foundation
import Testing
import TygerTestSupport

/// `tyger-server run`'s connection limits: bad values from options or `TYGER_SERVER_*` variables are usage errors
/// naming the option or variable; good ones start the server.
struct ServerOptionsCLITests {
    @Test(arguments: [
        (["--max-connections", "0"], [:], "--max-connections"),
        (["--max-unauthenticated-per-source", "99999999999"], [:], "--max-unauthenticated-per-source"),
        (["--idle-timeout", "0s"], [:], "--idle-timeout"),
        (["--header-timeout", "1e300"], [:], "--header-timeout"),
        ([], ["TYGER_SERVER_MAX_CONNECTIONS": "many"], "TYGER_SERVER_MAX_CONNECTIONS"),
        ([], ["TYGER_SERVER_IDLE_TIMEOUT": "-5s"], "TYGER_SERVER_IDLE_TIMEOUT"),
    ])
    func badLimitsAreUsageErrors(arguments: [String], environment: [String: String], named: String) async throws {
        try await withTemporaryDirectory(prefix: "tyger-limits") { dir in
            let result = try await runProcess(
                try TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/data", "--tcp", "127.0.0.1:0"] + arguments,
                environment: environment
            )
            #expect(result.exitCode == 64, "\(result)")
            #expect(result.stderrText.contains(named), "\(result.stderrText)")
        }
    }

    @Test func limitsFromTheEnvironmentStartTheServer() async throws {
        try await withTemporaryDirectory(prefix: "tyger-limits") { dir in
            let server = try ChildProcess(
                try TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/data", "--tcp", "127.0.0.1:0", "--max-connections", "10"],
                environment: ["TYGER_SERVER_IDLE_TIMEOUT": "5s", "TYGER_SERVER_HEADER_TIMEOUT": "2s"]
            )
            let deadline = ContinuousClock.now + .seconds(30)
            while !server.stderrSoFar.contains("endpoint=http://"), !server.hasExited, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.stderrSoFar.contains("endpoint=http://"), "\(server.stderrSoFar)")
            server.signal(SIGTERM)
            #expect(try await server.wait(timeout: .seconds(20)).exitCode == 0)
        }
    }

    /// Before: a server bound to a wildcard address wrote `localhost` in the access URLs it gave TCP clients, which
    /// only the server's own machine can use. `--advertise-url` names the URL clients reach it by (a host name,
    /// or a proxy terminating TLS); without it such a server warns.
    @Test func accessURLsForTCPClientsNameTheAdvertisedURL() async throws {
        try await withTemporaryDirectory(prefix: "tyger-adv") { dir in
            try TestFiles.makeDirectory(dir + "/data")
            let token = try await TygerServerBinary.createToken(dataDirectory: dir + "/data")
            let server = try await ServerProcess.start(
                dataDirectory: dir + "/data",
                arguments: ["--tcp", "127.0.0.1:0", "--advertise-url", "https://tyger.example.test:8443/"]
            )
            defer { server.process.signal(SIGKILL) }
            try await withCLIHome { home in
                let login = try await home.run(["login", try #require(server.tcpEndpoint), "--token", token])
                try #require(login.exitCode == 0, "\(login)")
                let id = try await home.output(["buffer", "create"])
                let url = try await home.output(["buffer", "access", id, "-w"])
                #expect(url.hasPrefix("https://tyger.example.test:8443/containers/\(id)?"), "\(url)")
                #expect(server.log.contains("advertising the TCP listener"), "\(server.log)")
            }
        }
        try await withTemporaryDirectory(prefix: "tyger-adv") { dir in
            let server = try await ServerProcess.start(dataDirectory: dir + "/data", arguments: ["--tcp", "0.0.0.0:0"])
            defer { server.process.signal(SIGKILL) }
            #expect(server.log.contains("set --advertise-url"), "\(server.log)")
        }
    }

    @Test(arguments: [
        (["--advertise-url", "ftp://host"], "expected http:// or https://"),
        (["--advertise-url", "http://host/tyger"], "a path is not supported"),
        (["--advertise-url", "http://u:p@host"], "credentials"),
        (["--advertise-url", "http://host?x=1"], "no query"),
        (["--advertise-url", "not a url"], "--advertise-url"),
    ])
    func badAdvertisedURLsAreUsageErrors(arguments: [String], message: String) async throws {
        try await withTemporaryDirectory(prefix: "tyger-adv") { dir in
            let result = try await runProcess(
                try TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/data", "--tcp", "127.0.0.1:0"] + arguments
            )
            #expect(result.exitCode == 64, "\(result)")
            #expect(result.stderrText.contains(message), "\(result.stderrText)")
        }
    }
}
