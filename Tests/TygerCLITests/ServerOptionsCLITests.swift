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
}
