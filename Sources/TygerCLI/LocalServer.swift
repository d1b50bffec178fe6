import CTygerNative
import Foundation
import TygerClient
import NIOCore
import NIOHTTP1
import TygerIO
#if canImport(Glibc)
import Glibc
#endif

/// The embedded local server: started in the background on first use, reused afterwards.
///
/// Racing CLIs serialize on an exclusive `flock` of `server.lock`; whoever holds it checks health again before
/// starting anything, so only one server ever starts. The server's pid is kept in `server/server.pid`.
enum LocalServer {
    static var socketURL: ServiceURL { ServiceURL(transport: .unix(socketPath: TygerHome.serverSocket), path: "/") }
    static var pidFile: String { TygerHome.serverDirectory + "/server.pid" }
    static var logFile: String { TygerHome.serverDirectory + "/server.log" }

    /// Whether a server answers on the socket.
    static func isHealthy(_ transport: HTTPTransport) async -> Bool {
        guard FileManager.default.fileExists(atPath: TygerHome.serverSocket) else { return false }
        let response = try? await transport.send(.GET, socketURL.with(path: "/healthcheck"), timeout: .seconds(2))
        return response?.status == 200
    }

    /// Starts the server unless one is running, and waits until it is healthy.
    /// - Throws: `UsageError` when the server binary is missing or does not become healthy in 20 s.
    static func ensureRunning(_ transport: HTTPTransport) async throws {
        if await isHealthy(transport) { return }
        try FileManager.default.createDirectory(atPath: TygerHome.serverDirectory, withIntermediateDirectories: true)
        let lockFD = open(TygerHome.path + "/server.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw UsageError("cannot open \(TygerHome.path)/server.lock") }
        defer { close(lockFD) }
        _ = try await DedicatedLock.lock(lockFD)
        if await isHealthy(transport) { return }
        let binary = try serverBinary()
        let logFD = open(logFile, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { throw UsageError("cannot open \(logFile)") }
        defer { close(logFD) }
        let args = [binary, "run", "--data-dir", TygerHome.serverDirectory]
        var cArgs = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        let pid = tyger_spawn_detached(binary, cArgs, logFD)
        guard pid > 0 else { throw UsageError("cannot start \(binary): \(String(cString: strerror(errno)))") }
        try? "\(pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        Log.shared.debug("Started the local server", ["pid": "\(pid)"])
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if await isHealthy(transport) { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw UsageError("the local server exited at start (status \(status)); see \(logFile)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw UsageError("the local server did not become healthy within 20 s; see \(logFile)")
    }

    /// Stops the embedded server: SIGTERM, then waits up to 10 s. Returns false if none was running.
    static func stop() async throws -> Bool {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: " \n"))
        else { return false }
        guard kill(pid, 0) == 0 else {
            try? FileManager.default.removeItem(atPath: pidFile)
            return false
        }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, kill(pid, 0) == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: pidFile)
        return true
    }

    static var runningPID: Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: " \n")), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// `tyger-server` next to this executable, else on PATH.
    static func serverBinary() throws -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let sibling = (me as NSString).deletingLastPathComponent + "/tyger-server"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/tyger-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw UsageError("cannot find the tyger-server executable next to \(me) or on PATH")
    }
}

/// Takes an exclusive flock on a dedicated thread (it may block while another CLI starts the server).
enum DedicatedLock {
    static func lock(_ fd: Int32) async throws -> Bool {
        try await DedicatedThread.run { tyger_flock(fd, 1, 0) == 0 }
    }
}
