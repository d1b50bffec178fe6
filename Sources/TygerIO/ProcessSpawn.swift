private import CTygerSpawn

#if canImport(Glibc)
private import Glibc
#endif

/// Starting child processes the way every part of the server does (`tyger_spawn_io`): a new process group led by
/// the child, default signal dispositions and an empty mask, and no descriptor of ours but its stdin, stdout and
/// stderr (everything above 2 is closed in the child, `O_CLOEXEC` or not).
public enum ProcessSpawn {
    /// The executable `program` names: itself when it contains a `/`, else the first `dir/program` that is executable
    /// for the directories of `searchPath` (`PATH`; `/usr/local/bin:/usr/bin:/bin` when `nil`), relative ones taken
    /// from `workingDirectory`; `nil` when none is.
    public static func find(_ program: String, searchPath: String?, workingDirectory: String) -> String? {
        if program.contains("/") { return program }
        for dir in (searchPath ?? defaultSearchPath).split(separator: ":") {
            let candidate = (dir.hasPrefix("/") ? String(dir) : workingDirectory + "/" + dir) + "/" + program
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The `PATH` searched when there is none.
    public static let defaultSearchPath = "/usr/local/bin:/usr/bin:/bin"

    /// Starts `path` (no `PATH` search: ``find(_:searchPath:workingDirectory:)``) with `arguments` (its `argv[0]` first) and exactly `environment`.
    ///
    /// - Parameters:
    ///   - workingDirectory: The child's working directory; `nil` keeps ours.
    ///   - stdin: The descriptor the child reads as stdin; `nil` for `/dev/null`.
    /// - Returns: The child's pid (also its process group's ID).
    /// - Throws: `TygerIOError` with the `errno` of a failed spawn.
    public static func start(
        _ path: String,
        arguments: [String],
        environment: [String: String],
        workingDirectory: String? = nil,
        stdin: Int32? = nil,
        stdout: Int32,
        stderr: Int32
    ) throws -> Int32 {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                tyger_spawn_io(path, a.baseAddress, e.baseAddress, workingDirectory, stdin ?? -1, stdout, stderr, &pid)
            }
        }
        guard rc == 0 else {
            throw TygerIOError(.system, "cannot start \(path): \(String(cString: strerror(rc)))", errno: rc)
        }
        return pid
    }
}

/// What a command run by ``ProcessSpawn/runCapturing(_:arguments:environment:input:timeoutMilliseconds:outputLimit:captureError:)``
/// did: its exit code (128 + the signal number when a signal ended it) and what it wrote.
public struct CapturedRun: Sendable {
    public var code: Int32
    /// Its stdout; empty when it wrote more than the limit.
    public var output: [UInt8]
    /// Its stderr (empty unless captured); empty when it wrote more than the limit.
    public var error: [UInt8]
}

extension ProcessSpawn {
    /// Runs `path` to its end with `input` on its stdin and its stdout (and stderr, or `/dev/null`) in anonymous
    /// memory files, not pipes: no size of answer can block it, and a child it leaves running (an agent) cannot hold
    /// the answer back. Blocking: call it from a thread of its own.
    ///
    /// - Parameters:
    ///   - arguments: `argv`, its `argv[0]` first.
    ///   - outputLimit: The most bytes read back of each stream; a longer one reads back empty.
    /// - Returns: How it ended; `nil` when it outlived `timeoutMilliseconds` (its process group is killed then).
    /// - Throws: `TygerIOError` when the memory files cannot be made or written, or it cannot be started.
    public static func runCapturing(
        _ path: String,
        arguments: [String],
        environment: [String: String],
        input: [UInt8],
        timeoutMilliseconds: Int32,
        outputLimit: Int,
        captureError: Bool
    ) throws -> CapturedRun? {
        let stdin = tyger_memfd("tyger-command-input")
        let stdout = tyger_memfd("tyger-command-output")
        let stderr = captureError ? tyger_memfd("tyger-command-error") : open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { for fd in [stdin, stdout, stderr] where fd >= 0 { close(fd) } }
        guard stdin >= 0, stdout >= 0, stderr >= 0 else {
            throw TygerIOError(.system, "cannot make the memory files of \(path): \(String(cString: strerror(errno)))")
        }
        guard input.withUnsafeBytes({ pwrite(stdin, $0.baseAddress, $0.count, 0) }) == input.count else {
            throw TygerIOError(.system, "cannot write the input of \(path): \(String(cString: strerror(errno)))")
        }
        let pid = try start(
            path,
            arguments: arguments,
            environment: environment,
            stdin: stdin,
            stdout: stdout,
            stderr: stderr
        )
        var code: Int32 = -1
        var signal: Int32 = 0
        if tyger_wait_timeout(pid, timeoutMilliseconds, &code, &signal) != 0 {
            _ = tyger_kill_group(pid, SIGKILL)  // the command leads its own process group
            _ = tyger_wait(pid, &code, &signal)
            return nil
        }
        return CapturedRun(
            code: code,  // 128 + the signal number when a signal ended it
            output: contents(of: stdout, limit: outputLimit),
            error: captureError ? contents(of: stderr, limit: outputLimit) : []
        )
    }

    /// What a memory file holds, up to `limit` bytes (empty past it).
    private static func contents(of fd: Int32, limit: Int) -> [UInt8] {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0, size <= limit else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n == Int(size) ? bytes : []
    }
}
