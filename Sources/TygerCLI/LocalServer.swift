import Foundation
import Logging
import TygerClient
import TygerCore
import TygerIO

/// The embedded local server: started in the background on first use, reused afterwards.
///
/// Racing CLIs serialize on an exclusive `flock` of `server.lock`; whoever holds it checks health again before
/// starting anything, so only one server ever starts. The server's pid is kept in `server/server.pid`.
enum LocalServer {
    static var socketURL: ServiceURL {
        ServiceURL(transport: .unix(socketPath: TygerHome.server.socketPath), path: "/")
    }
    static var pidFile: String { TygerHome.server.root + "/server.pid" }
    static var logFile: String { TygerHome.server.root + "/server.log" }

    /// Whether a server answers on the socket.
    static func isHealthy(_ client: ControlPlaneClient) async -> Bool {
        guard FileManager.default.fileExists(atPath: TygerHome.server.socketPath) else { return false }
        return await client.isHealthy()
    }

    /// Starts the server unless one is running, and waits until it is healthy.
    /// - Throws: `CommandFailure` when the server binary is missing or does not become healthy in 20 s.
    static func ensureRunning(_ client: ControlPlaneClient) async throws {
        if await isHealthy(client) { return }
        let directory = TygerHome.server.root
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let lockFD = try PathOps.open(TygerHome.serverLockFile, mode: .readWriteCreating(permissions: 0o600))
        defer { FileDescriptorOps.close(lockFD) }  // closing the descriptor releases the lock
        try await DedicatedThread.run(name: "tyger-lock") { try PathOps.lockExclusively(lockFD) }
        if await isHealthy(client) { return }
        let binary = try serverBinary()
        let logFD = try PathOps.open(logFile, mode: .append(permissions: 0o600))
        defer { FileDescriptorOps.close(logFD) }
        let logStart = (try? FileManager.default.attributesOfItem(atPath: logFile)[.size] as? Int) ?? 0
        let pid: Int32
        do {
            pid = try ProcessOps.spawnDetached(
                binary,
                arguments: [binary, "run", "--data-dir", directory] + settingsFromEnvironment(),
                logFD: logFD
            )
        } catch let error as TygerIOError {
            throw CommandFailure("cannot start \(binary): \(error.message)")
        }
        try? "\(pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        logger.debug("Started the local server", metadata: ["pid": "\(pid)"])
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if await isHealthy(client) { return }
            if let status = ProcessOps.exitStatusIfExited(pid) {
                let code = status & 0x7f == 0 ? "exit code \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
                let reason = Self.lastLine(of: logFile, from: logStart).map { ": \($0)" } ?? ""
                throw CommandFailure("the local server exited at start (\(code))\(reason); see \(logFile)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandFailure("the local server did not become healthy within 20 s; see \(logFile)")
    }

    /// The last non-empty line `path` has after `offset` (the last 4 KiB of it at most), or the error it logs: a
    /// server that stops at start says why there.
    static func lastLine(of path: String, from offset: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd(), Int(end) > offset else { return nil }
        try? handle.seek(toOffset: UInt64(max(offset, Int(end) - 4096)))
        guard let data = try? handle.readToEnd() else { return nil }
        guard var line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).last else {
            return nil
        }
        // A logged error (`<time> critical tyger-server: error=<why> [Module] cannot run the server`): the why.
        if let error = line.range(of: "error=") {
            line = line[error.upperBound...]
            if let module = line.range(of: " [") { line = line[..<module.lowerBound] }
        }
        return String(line.prefix(400))
    }

    /// Server settings taken from the environment, each the variable of one `tyger-server run` option:
    /// `TYGER_RUN_BUFFER_TTL` → `--run-buffer-ttl` (`0` keeps run buffers), `TYGER_EXECUTOR` → `--executor`
    /// (`process`, `docker`), `TYGER_PULL` → `--pull`, `TYGER_CONTAINER_NETWORK` → `--container-network`,
    /// `TYGER_DATABASE` → `--database`, `TYGER_BLOB_STORE` → `--blob-store`, `TYGER_TCP` → `--tcp`,
    /// `TYGER_ADVERTISE_URL` → `--advertise-url`, `TYGER_SLURM_<X>` → `--slurm-<x>` (agent, user, partition, account,
    /// scratch, bin, ca-cert, container-host, container-pull, container-network), `TYGER_KEEP_CONTAINERS=1` → `--keep-containers`. `DOCKER_HOST` and the `AWS_*` credentials reach the server as they are: the server reads
    /// them.
    static func settingsFromEnvironment() -> [String] {
        let environment = ProcessInfo.processInfo.environment
        var arguments: [String] = []
        for (variable, option) in environmentOptions {
            if let value = environment[variable], !value.isEmpty { arguments += [option, value] }
        }
        if let keep = environment["TYGER_KEEP_CONTAINERS"], !["", "0", "false"].contains(keep) {
            arguments.append("--keep-containers")
        }
        return arguments
    }

    /// The environment variable the embedded server's `--run-buffer-ttl` comes from.
    static let runBufferTTLVariable = "TYGER_RUN_BUFFER_TTL"

    /// Variables whose value becomes an option of the embedded server.
    static let environmentOptions = [
        (runBufferTTLVariable, "--run-buffer-ttl"), ("TYGER_EXECUTOR", "--executor"), ("TYGER_PULL", "--pull"),
        ("TYGER_CONTAINER_NETWORK", "--container-network"), ("TYGER_DATABASE", "--database"),
        ("TYGER_BLOB_STORE", "--blob-store"), ("TYGER_TCP", "--tcp"), ("TYGER_ADVERTISE_URL", "--advertise-url"),
        ("TYGER_SLURM_AGENT", "--slurm-agent"), ("TYGER_SLURM_USER", "--slurm-user"),
        ("TYGER_SLURM_PARTITION", "--slurm-partition"), ("TYGER_SLURM_ACCOUNT", "--slurm-account"),
        ("TYGER_SLURM_SCRATCH", "--slurm-scratch"), ("TYGER_SLURM_BIN", "--slurm-bin"),
        ("TYGER_SLURM_CA_CERT", "--slurm-ca-cert"), ("TYGER_SLURM_CONTAINER_HOST", "--slurm-container-host"),
        ("TYGER_SLURM_CONTAINER_PULL", "--slurm-container-pull"),
        ("TYGER_SLURM_CONTAINER_NETWORK", "--slurm-container-network"),
    ]

    /// Stops the embedded server: SIGTERM, then waits up to 10 s (SIGKILL after). Returns false if none was running.
    ///
    /// Only a process that is this home's server is signalled: after a crash the PID in `server.pid` may have been
    /// reused by an unrelated process, which is left alone (and the stale file removed).
    static func stop() async throws -> Bool {
        guard let pid = recordedPID else { return false }
        guard isThisHomesServer(pid) else {
            try? FileManager.default.removeItem(atPath: pidFile)
            return false
        }
        ProcessOps.send(.terminate, to: pid)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, ProcessOps.isAlive(pid) {
            try await Task.sleep(for: .milliseconds(50))
        }
        if ProcessOps.isAlive(pid) { ProcessOps.send(.kill, to: pid) }
        try? FileManager.default.removeItem(atPath: pidFile)
        return true
    }

    static var runningPID: Int32? { recordedPID.flatMap { isThisHomesServer($0) ? $0 : nil } }

    /// The PID in `server.pid`, whatever process it names now.
    private static var recordedPID: Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: " \n"))
    }

    /// Whether `pid` is a `tyger-server run --data-dir <this home's server directory>` (what ``ensureRunning(_:)``
    /// starts), not another process that reuses a recorded PID.
    static func isThisHomesServer(_ pid: Int32) -> Bool {
        guard let arguments = ProcessOps.commandLine(of: pid), let program = arguments.first,
            (program as NSString).lastPathComponent == "tyger-server",
            let flag = arguments.firstIndex(of: "--data-dir"), flag + 1 < arguments.count
        else { return false }
        return arguments[flag + 1] == TygerHome.server.root
    }

    /// `tyger-server` next to this executable, else on PATH.
    static func serverBinary() throws -> String {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let sibling = (me as NSString).deletingLastPathComponent + "/tyger-server"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/tyger-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandFailure("cannot find the tyger-server executable next to \(me) or on PATH")
    }
}
