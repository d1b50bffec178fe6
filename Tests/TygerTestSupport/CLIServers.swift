import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The built `tyger-server` executable (next to `tyger`).
public enum TygerServerBinary {
    /// `<root>/.build/debug/tyger-server`.
    ///
    /// - Throws: `TestSupportError` when it has not been built.
    public static func path() throws -> String {
        let path = TygerBinary.packageRoot() + "/.build/debug/tyger-server"
        guard access(path, X_OK) == 0 else {
            throw TestSupportError("\(path) is missing: run `swift build --build-tests` first")
        }
        return path
    }

    /// Runs `tyger-server` with `arguments` to completion.
    public static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessResult {
        try await runProcess(path(), arguments, environment: environment, timeout: timeout)
    }

    /// `tyger-server token create --data-dir DIR`: the new token.
    public static func createToken(dataDirectory: String, name: String = "test") async throws -> String {
        let result = try await run(["token", "create", "--data-dir", dataDirectory, "--name", name])
        guard result.exitCode == 0 else { throw TestSupportError("token create failed: \(result)") }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A private `TYGER_HOME` for one test: every `tyger` it runs uses it, so the test gets its own login and its own
/// embedded server.
public struct CLIHome: Sendable {
    /// The home directory.
    public let path: String

    /// Variables every `tyger` of this home gets besides `TYGER_HOME` (e.g. the embedded server's executor).
    public let extraEnvironment: [String: String]

    public init(environment: [String: String] = [:]) throws {
        path = try makeTemporaryDirectory(prefix: "tyger-cli-home")
        extraEnvironment = environment
    }

    /// The embedded server's data directory.
    public var serverDirectory: String { path + "/server" }

    /// The environment that points `tyger` at this home.
    public var environment: [String: String] { extraEnvironment.merging(["TYGER_HOME": path]) { _, home in home } }

    /// Runs `tyger` with `arguments` to completion.
    public func run(
        _ arguments: [String],
        input: ChildInput = .null,
        timeout: Duration = .seconds(60)
    ) async throws
        -> ProcessResult
    {
        try await runProcess(TygerBinary.path(), arguments, input: input, environment: environment, timeout: timeout)
    }

    /// Starts `tyger` with `arguments` without waiting for it.
    public func start(_ arguments: [String], input: ChildInput = .null) throws -> ChildProcess {
        try ChildProcess(TygerBinary.path(), arguments, input: input, environment: environment)
    }

    /// Runs a bash script (`-o pipefail`) with `$TYGER`, `$TYGER_SERVER` and this home.
    public func shell(_ script: String, timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        var env = environment
        env["TYGER_SERVER"] = try TygerServerBinary.path()
        return try await runShell(script, environment: env, timeout: timeout)
    }

    /// Runs `tyger` and returns its stdout without the trailing newline.
    ///
    /// - Throws: `TestSupportError` when it does not exit with 0.
    public func output(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> String {
        let result = try await run(arguments, timeout: timeout)
        guard result.exitCode == 0 else {
            throw TestSupportError("tyger \(arguments.joined(separator: " ")) failed: \(result)")
        }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `tyger` and parses its stdout as JSON.
    public func json(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> Any {
        let text = try await output(arguments, timeout: timeout)
        do { return try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
            throw TestSupportError("tyger \(arguments.joined(separator: " ")) printed no JSON: \(text)")
        }
    }

    /// The pid of the embedded server, from its pid file, when that process is alive.
    public var embeddedServerPID: Int32? {
        guard let text = try? String(contentsOfFile: serverDirectory + "/server.pid", encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// Stops the embedded server if one runs (`tyger api stop`), and removes the home.
    public func tearDown() async {
        _ = try? await run(["api", "stop"], timeout: .seconds(30))
        // If the CLI could not stop it (damaged state), do not leave it running.
        for pid in ServerProcesses.serving(dataDirectory: serverDirectory) { kill(pid, SIGKILL) }
        removeTree(path)
    }
}

/// Runs `body` with a fresh `CLIHome`; its embedded server is stopped and the home removed afterwards, also when
/// `body` throws.
public func withCLIHome<T>(
    environment: [String: String] = [:],
    _ body: (CLIHome) async throws -> T
) async throws -> T {
    let home = try CLIHome(environment: environment)
    do {
        let result = try await body(home)
        await home.tearDown()
        return result
    } catch {
        await home.tearDown()
        throw error
    }
}

/// Finds running `tyger-server` processes by their command line.
public enum ServerProcesses {
    /// The pids of live `tyger-server run` processes whose `--data-dir` is `dataDirectory`.
    public static func serving(dataDirectory: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var pids: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else {
                continue
            }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let first = args.first, first.hasSuffix("tyger-server"), args.count > 1, args[1] == "run" else {
                continue
            }
            if let i = args.firstIndex(of: "--data-dir"), i + 1 < args.count, args[i + 1] == dataDirectory {
                pids.append(pid)
            }
        }
        return pids.sorted()
    }
}

/// A `tyger-server run` started by a test, with its listeners up.
public final class ServerProcess: Sendable {
    public let dataDirectory: String
    public let process: ChildProcess
    /// The TCP endpoint (`http://127.0.0.1:PORT` or `https://…`), when it listens on TCP.
    public let tcpEndpoint: String?

    /// `<data-dir>/api.sock`.
    public var socketPath: String { dataDirectory + "/api.sock" }

    /// Its log so far.
    public var log: String { process.stderrSoFar }

    private init(dataDirectory: String, process: ChildProcess, tcpEndpoint: String?) {
        self.dataDirectory = dataDirectory
        self.process = process
        self.tcpEndpoint = tcpEndpoint
    }

    /// Starts `tyger-server COMMAND --data-dir DIR ARGUMENTS` (`run`, or `data-plane`) and waits until every listener
    /// has logged its endpoint.
    ///
    /// - Parameters:
    ///   - executable: The `tyger-server` to run; the debug build's when `nil`.
    ///   - launcher: A command that runs it (`ip netns exec NS`), or none.
    /// - Throws: `TestSupportError` when the server exits or is not listening within `timeout`.
    public static func start(
        dataDirectory: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        executable: String? = nil,
        command: String = "run",
        launcher: [String] = [],
        timeout: Duration = .seconds(30)
    ) async throws
        -> ServerProcess
    {
        let server = try executable ?? TygerServerBinary.path()
        let process = try ChildProcess(
            launcher.first ?? server,
            launcher.dropFirst() + (launcher.isEmpty ? [] : [server]) + [command, "--data-dir", dataDirectory]
                + arguments,
            environment: environment.merging(["TYGER_HOME": "/nonexistent-tyger-home"]) { $1 }
        )
        let wantsTCP = arguments.contains("--tcp")
        let wantsUnix = !arguments.contains("--no-unix-socket")
        let deadline = ContinuousClock.now + timeout
        while true {
            let endpoints = Self.endpoints(in: process.stderrSoFar)
            let tcp = endpoints.first { $0.hasPrefix("http://") || $0.hasPrefix("https://") }
            let unix = endpoints.first { $0.hasPrefix("http+unix://") }
            if (!wantsTCP || tcp != nil) && (!wantsUnix || unix != nil) {
                return ServerProcess(dataDirectory: dataDirectory, process: process, tcpEndpoint: tcp)
            }
            if process.hasExited {
                let result = try await process.wait()
                throw TestSupportError("tyger-server exited at start: \(result)")
            }
            if ContinuousClock.now >= deadline {
                process.signal(SIGKILL)
                throw TestSupportError("tyger-server did not listen within \(timeout): \(process.stderrSoFar)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The values of `endpoint=` in log lines.
    static func endpoints(in log: String) -> [String] {
        log.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("listening"), let range = line.range(of: "endpoint=") else { return nil }
            return String(line[range.upperBound...].prefix { !$0.isWhitespace })
        }
    }

    /// SIGTERM, then waits for the exit.
    @discardableResult
    public func stop(timeout: Duration = .seconds(20)) async throws -> ProcessResult {
        process.signal(SIGTERM)
        return try await process.wait(timeout: timeout)
    }
}

/// Runs `body` with a `tyger-server` on `dataDirectory`, stopped afterwards (also when `body` throws).
public func withServer<T>(
    dataDirectory: String,
    arguments: [String] = [],
    environment: [String: String] = [:],
    _ body: (ServerProcess) async throws -> T
) async throws -> T {
    let server = try await ServerProcess.start(
        dataDirectory: dataDirectory,
        arguments: arguments,
        environment: environment
    )
    do {
        let result = try await body(server)
        _ = try? await server.stop()
        return result
    } catch {
        _ = try? await server.stop()
        throw error
    }
}
