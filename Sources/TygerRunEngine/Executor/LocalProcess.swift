private import CTygerSpawn
import Synchronization
import TygerIO
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// One host process in its own process group, its stdout and stderr pumped into the run log by two threads, and
/// a thread waiting for its exit.
///
/// When the process exits, the rest of its group is killed (as a container's processes die with it), so nothing
/// keeps the run's FIFOs or log pipes open.
final class LocalProcess: Sendable {
    let pid: Int32
    private struct State {
        var exitCode: Int32?
        var finished = false
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }
    private let state = Mutex(State())
    private let pumpsDone = Mutex(0)

    private init(pid: Int32) { self.pid = pid }

    /// Whether the process itself has exited (its output may still be draining).
    var hasExited: Bool { state.withLock { $0.exitCode != nil } }

    /// Waits for the exit and the end of its output.
    func exitCode() async -> Int32 {
        await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
            let code = state.withLock { s -> Int32? in
                if s.finished { return s.exitCode }
                s.waiters.append(c)
                return nil
            }
            if let code { c.resume(returning: code) }
        }
    }

    /// Starts `launch`.
    ///
    /// - Throws: `TygerRunEngineError` `.executorFailure` when the program is not found or cannot be spawned.
    static func spawn(_ launch: ReplicaLaunch, log: RunLogWriter) throws -> LocalProcess {
        guard let program = launch.arguments.first else {
            throw TygerRunEngineError(.executorFailure, "nothing to run: the command line is empty")
        }
        let workingDirectory = launch.workingDirectory ?? "/"
        let path = try resolve(program, path: launch.environment["PATH"], workingDirectory: workingDirectory)
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard tyger_pipe_cloexec(&out) == 0 else {
            throw TygerRunEngineError(.executorFailure, "pipe2 failed: \(String(cString: strerror(errno)))")
        }
        guard tyger_pipe_cloexec(&err) == 0 else {
            Glibc.close(out[0])
            Glibc.close(out[1])
            throw TygerRunEngineError(.executorFailure, "pipe2 failed: \(String(cString: strerror(errno)))")
        }
        let spawned = Result {
            try ProcessSpawn.start(
                path,
                arguments: launch.arguments,
                environment: launch.environment,
                workingDirectory: workingDirectory,
                stdout: out[1],
                stderr: err[1]
            )
        }
        Glibc.close(out[1])
        Glibc.close(err[1])
        let childPid: Int32
        do {
            childPid = try spawned.get()
        } catch {
            Glibc.close(out[0])
            Glibc.close(err[0])
            let reason = String(cString: strerror((error as? TygerIOError)?.errno ?? EIO))
            throw TygerRunEngineError(
                .executorFailure,
                "cannot start '\(program)' (\(path)) in \(workingDirectory): \(reason)"
            )
        }
        let process = LocalProcess(pid: childPid)
        for fd in [out[0], err[0]] {
            DedicatedThread.start(name: "tyger-run-log") {
                log.pump(from: fd, prefix: launch.logPrefix)
                Glibc.close(fd)
                process.pumpsDone.withLock { $0 += 1 }
            }
        }
        DedicatedThread.start(name: "tyger-run-wait") {
            var code: Int32 = -1
            var signal: Int32 = 0
            _ = tyger_wait(childPid, &code, &signal)
            process.state.withLock { $0.exitCode = code }
            // Stragglers in the group die with the main process, as in a container.
            _ = tyger_kill_group(childPid, SIGKILL)
            var waited = 0
            while process.pumpsDone.withLock({ $0 }) < 2 && waited < 2000 {
                usleep(5000)
                waited += 5
            }
            let waiters = process.state.withLock { s -> [CheckedContinuation<Int32, Never>] in
                s.finished = true
                defer { s.waiters = [] }
                return s.waiters
            }
            for w in waiters { w.resume(returning: code) }
        }
        return process
    }

    /// Finds `program` in `path` (the child's PATH) unless it contains a slash.
    static func resolve(_ program: String, path: String?, workingDirectory: String) throws -> String {
        if let found = ProcessSpawn.find(program, searchPath: path, workingDirectory: workingDirectory) { return found }
        let searchPath = path ?? ProcessSpawn.defaultSearchPath
        throw TygerRunEngineError(.executorFailure, "the command '\(program)' was not found in PATH (\(searchPath))")
    }

    /// The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), to tell a pid reused.
    static func startTime(of pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")" come field 3 (state) onwards, so field 22 is at index 19.
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
