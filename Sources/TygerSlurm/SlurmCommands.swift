private import CTygerSpawn
import Foundation
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// Runs Slurm's client commands (`sbatch`, `squeue`, `scontrol`, `scancel`) on a thread of their own, with their
/// input and output in anonymous memory files (no size of answer can block them) and a time bound.
struct SlurmCommands: Sendable {
    /// Where the commands are (`bin` of the Slurm installation); `nil` searches `PATH`.
    var binDirectory: String?
    /// The commands' environment (the server's, which carries `SLURM_CONF`).
    var environment: [String: String]
    /// How long one command may take before it is killed.
    var timeout: Duration = .seconds(60)

    struct Result: Sendable {
        var code: Int32
        var output: String
        var error: String

        /// The error output's last line, or the output's, for messages.
        var message: String {
            let text = error.trimmingCharacters(in: .whitespacesAndNewlines)
            let chosen = text.isEmpty ? output.trimmingCharacters(in: .whitespacesAndNewlines) : text
            return chosen.split(separator: "\n").last.map(String.init) ?? "exit code \(code)"
        }
    }

    /// Runs `program` with `arguments`.
    ///
    /// - Throws: `SlurmError` when it cannot be started or outlives the time bound.
    func run(_ program: String, _ arguments: [String], input: String? = nil) async throws -> Result {
        let path: String
        if let binDirectory {
            path = binDirectory + "/" + program
        } else if let found = ProcessSpawn.find(
            program,
            searchPath: environment["PATH"],
            workingDirectory: "/"
        ) {
            path = found
        } else {
            throw SlurmError("\(program) was not found in PATH (is Slurm's client installed? see --slurm-bin)")
        }
        let environment = self.environment
        let timeoutMilliseconds = Int32(min(timeout.components.seconds * 1000, Int64(Int32.max)))
        return try await DedicatedThread.run(name: "tyger-slurm") {
            let stdin = tyger_memfd("slurm-input")
            let stdout = tyger_memfd("slurm-output")
            let stderr = tyger_memfd("slurm-error")
            defer { for fd in [stdin, stdout, stderr] where fd >= 0 { close(fd) } }
            guard stdin >= 0, stdout >= 0, stderr >= 0 else { throw SlurmError("cannot make memory files") }
            if let input {
                let bytes = Array(input.utf8)
                guard bytes.withUnsafeBytes({ pwrite(stdin, $0.baseAddress, $0.count, 0) }) == bytes.count else {
                    throw SlurmError("cannot write the input of \(program)")
                }
            }
            let pid: Int32
            do {
                pid = try ProcessSpawn.start(
                    path,
                    arguments: [path] + arguments,
                    environment: environment,
                    stdin: stdin,
                    stdout: stdout,
                    stderr: stderr
                )
            } catch {
                throw SlurmError("cannot run \(path): \(error)")
            }
            var code: Int32 = -1
            var signal: Int32 = 0
            if tyger_wait_timeout(pid, timeoutMilliseconds, &code, &signal) != 0 {
                _ = tyger_kill_group(pid, SIGKILL)
                _ = tyger_wait(pid, &code, &signal)
                throw SlurmError("\(program) did not answer within \(timeoutMilliseconds / 1000) s")
            }
            return Result(
                code: signal > 0 ? 128 + signal : code,
                output: Self.contents(of: stdout),
                error: Self.contents(of: stderr)
            )
        }
    }

    private static func contents(of fd: Int32) -> String {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: Int(min(size, 16 << 20)))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return String(decoding: bytes[0..<max(0, n)], as: UTF8.self)
    }
}

/// A failure to talk to Slurm, in words.
public struct SlurmError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
