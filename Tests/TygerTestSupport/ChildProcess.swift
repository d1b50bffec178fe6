import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `pipe2(2)`, which the Glibc module does not export (it needs `_GNU_SOURCE`).
@_silgen_name("pipe2")
func c_pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// Creates a close-on-exec pipe.
///
/// - Returns: The read and write ends; the caller closes them.
public func makePipe() throws -> (readEnd: Int32, writeEnd: Int32) {
    var fds: [Int32] = [-1, -1]
    guard c_pipe2(&fds, O_CLOEXEC) == 0 else {
        throw TestSupportError("pipe2 failed: \(String(cString: strerror(errno)))")
    }
    return (fds[0], fds[1])
}

/// What a finished child process left behind.
public struct ProcessResult: Sendable, CustomStringConvertible {
    /// The exit status, when the process exited.
    public var exitCode: Int32?
    /// The signal that ended the process, when one did.
    public var signal: Int32?
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// From start to exit, measured on threads of their own (not delayed by a busy cooperative pool).
    public var elapsed: Duration = .zero

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    public var description: String {
        let status = exitCode.map { "exit \($0)" } ?? signal.map { "signal \($0)" } ?? "?"
        let out = stdout.count > 300 ? "\(stdout.count) bytes" : stdoutText
        return "\(status); stdout: \(out); stderr: \(stderrText)"
    }
}

/// Where a child's standard input comes from.
public enum ChildInput: Sendable {
    /// `/dev/null`.
    case null
    /// A regular file holding these bytes.
    case bytes([UInt8])
    /// An existing file.
    case file(String)
    /// A pipe whose write end the test keeps (`ChildProcess.stdinFD`).
    case pipe
}

/// A process started with `posix_spawn`, its output captured in temporary files.
///
/// Every descriptor the helpers create is close-on-exec, so concurrently running tests never leak pipe ends into
/// each other's children (which would keep a pipe open and hide end of stream).
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `stdinFD` is changed only by `closeStdin()`, which tests call from one task; the rest is immutable
    // or locked.
    public let pid: Int32
    /// The write end of the child's stdin, for `.pipe` input; -1 once closed.
    public private(set) var stdinFD: Int32
    private let workDirectory: String
    /// Set by the reaper thread once the child has exited.
    private let outcome = Locked<ProcessResult?>(nil)

    /// Starts `executable` with `arguments`.
    ///
    /// - Throws: `TestSupportError` when the process cannot be started.
    public init(
        _ executable: String,
        _ arguments: [String],
        input: ChildInput = .null,
        environment: [String: String] = [:]
    ) throws {
        workDirectory = try makeTemporaryDirectory(prefix: "tyger-proc")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeRead: Int32 = -1
        var pipeWrite: Int32 = -1
        switch input {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .bytes(let bytes):
            let path = workDirectory + "/stdin"
            try TestFiles.write(bytes, to: path)
            posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
        case .pipe:
            var fds: [Int32] = [-1, -1]
            guard c_pipe2(&fds, O_CLOEXEC) == 0 else { throw TestSupportError("pipe2 failed") }
            pipeRead = fds[0]
            pipeWrite = fds[1]
            posix_spawn_file_actions_adddup2(&actions, pipeRead, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, workDirectory + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, workDirectory + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var env = ProcessInfo.processInfo.environment
        // Never touch the user's own embedded server: every child gets the test process's home unless told otherwise.
        env["TYGER_HOME"] = TestHome.path
        for (k, v) in environment { env[k] = v }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        if pipeRead >= 0 { close(pipeRead) }
        guard rc == 0 else {
            if pipeWrite >= 0 { close(pipeWrite) }
            removeTree(workDirectory)
            throw TestSupportError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        self.stdinFD = pipeWrite
        // A reaper thread waits for the exit, so the exit time is exact whatever the test's tasks are doing.
        let started = ContinuousClock.now
        let childPID = pid
        let directory = workDirectory
        let outcome = self.outcome
        startThread {
            var status: Int32 = 0
            while waitpid(childPID, &status, 0) < 0 && errno == EINTR {}
            let ended = ContinuousClock.now
            var result = ChildProcess.collect(status, directory: directory)
            result.elapsed = ended - started
            outcome.withLock { $0 = result }
        }
    }

    deinit {
        if stdinFD >= 0 { close(stdinFD) }
        if outcome.value == nil { kill(pid, SIGKILL) }  // the reaper thread reaps it
        removeTree(workDirectory)
    }

    /// Writes all of `bytes` to the child's stdin pipe (blocking; use from a dedicated thread for large writes).
    public func writeStdin(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(stdinFD, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestSupportError("write to child stdin failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Closes the child's stdin pipe: end of stream for it.
    public func closeStdin() {
        if stdinFD >= 0 { close(stdinFD) }
        stdinFD = -1
    }

    /// Sends a signal to the child.
    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// The file the child's stderr goes to; readable while the child runs (for servers that log their endpoint).
    public var stderrPath: String { workDirectory + "/stderr" }

    /// What the child has written to stderr so far.
    public var stderrSoFar: String { String(decoding: (try? TestFiles.read(stderrPath)) ?? [], as: UTF8.self) }

    /// Whether the child has exited.
    public var hasExited: Bool { outcome.value != nil }

    /// Waits for the child to exit, polling without blocking the cooperative pool.
    ///
    /// - Returns: Its exit status and output.
    /// - Throws: `TestSupportError` when it is still running after `timeout`; it is killed first.
    public func wait(timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let result = outcome.value { return result }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                while outcome.value == nil { try? await Task.sleep(for: .milliseconds(5)) }
                throw TestSupportError(
                    "process \(pid) still running after \(timeout); killed. Output so far: \(outcome.value!)"
                )
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private static func collect(_ status: Int32, directory: String) -> ProcessResult {
        let out = (try? TestFiles.read(directory + "/stdout")) ?? []
        let err = (try? TestFiles.read(directory + "/stderr")) ?? []
        let termSignal = status & 0x7F
        if termSignal == 0 {
            return ProcessResult(exitCode: (status >> 8) & 0xFF, signal: nil, stdout: out, stderr: err)
        }
        return ProcessResult(exitCode: nil, signal: termSignal, stdout: out, stderr: err)
    }
}

/// Runs a program to completion.
///
/// - Throws: `TestSupportError` when it cannot start or does not finish within `timeout`.
public func runProcess(
    _ executable: String,
    _ arguments: [String],
    input: ChildInput = .null,
    environment: [String: String] = [:],
    timeout: Duration = .seconds(60)
) async throws -> ProcessResult {
    let child = try ChildProcess(executable, arguments, input: input, environment: environment)
    return try await child.wait(timeout: timeout)
}

/// Runs a bash script (`bash -o pipefail -c`), with `$TYGER` set to the built binary.
public func runShell(
    _ script: String,
    environment: [String: String] = [:],
    timeout: Duration = .seconds(60)
) async throws
    -> ProcessResult
{
    var env = environment
    env["TYGER"] = try TygerBinary.path()
    return try await runProcess("/bin/bash", ["-o", "pipefail", "-c", script], environment: env, timeout: timeout)
}

/// The built `tyger` executable.
public enum TygerBinary {
    /// The package root, found from this file's path (`<root>/Tests/TygerTestSupport/ChildProcess.swift`).
    public static func packageRoot(filePath: String = #filePath) -> String {
        var parts = filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// `<root>/.build/debug/tyger`.
    ///
    /// - Throws: `TestSupportError` when it has not been built.
    public static func path() throws -> String {
        let path = packageRoot() + "/.build/debug/tyger"
        guard access(path, X_OK) == 0 else {
            throw TestSupportError("\(path) is missing: run `swift build --build-tests` first")
        }
        return path
    }

    /// Runs `tyger` with `arguments` to completion.
    public static func run(
        _ arguments: [String],
        input: ChildInput = .null,
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessResult {
        try await runProcess(path(), arguments, input: input, timeout: timeout)
    }

    /// Starts `tyger` with `arguments` without waiting for it.
    public static func start(_ arguments: [String], input: ChildInput = .null) throws -> ChildProcess {
        try ChildProcess(path(), arguments, input: input)
    }
}

/// The `TYGER_HOME` of every `tyger` the tests start: private to this test process; an embedded server started
/// there is stopped when the process exits.
public enum TestHome {
    public static let path: String = {
        let path = "/tmp/tyger-test-home-\(getpid())"
        mkdir(path, 0o700)
        atexit { stopTestHomeServer() }
        return path
    }()
}

private func stopTestHomeServer() {
    let pidFile = "/tmp/tyger-test-home-\(getpid())/server/server.pid"
    guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
        let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    else { return }
    kill(pid, SIGTERM)
}
