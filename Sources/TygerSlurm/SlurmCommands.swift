import Foundation
import TygerIO

/// Runs Slurm's client commands (`sbatch`, `squeue`, `scontrol`, `scancel`) on a thread of their own, through
/// ``ProcessSpawn/runCapturing(_:arguments:environment:input:timeoutMilliseconds:outputLimit:captureError:)`` (input
/// and output in memory files, a time bound).
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

        /// The error output's last line, or the output's, for messages; when munge failed, its own words instead
        /// (the last line then only says `Protocol authentication error`).
        var message: String {
            let text = error.trimmingCharacters(in: .whitespacesAndNewlines)
            let chosen = text.isEmpty ? output.trimmingCharacters(in: .whitespacesAndNewlines) : text
            let lines = chosen.split(separator: "\n").map(String.init)
            if let munge = lines.first(where: { $0.contains("Munge encode failed") }) {
                let words = munge.range(of: "Munge encode failed").map { String(munge[$0.lowerBound...]) } ?? munge
                return "munge cannot authenticate this machine to Slurm: \(words)"
            }
            return lines.last ?? "exit code \(code)"
        }

        /// Whether munge failed (not running, or its socket out of reach).
        var isAuthenticationFailure: Bool { (error + output).contains("Munge encode failed") }
    }

    /// Runs `program` with `arguments`.
    ///
    /// - Throws: `SlurmError` when it cannot be started or outlives the time bound.
    /// - Parameter environment: The command's environment instead of ``environment`` (`sbatch`'s is its job's).
    func run(
        _ program: String,
        _ arguments: [String],
        input: String? = nil,
        environment: [String: String]? = nil
    ) async throws -> Result {
        let path: String
        if let binDirectory {
            path = binDirectory + "/" + program
        } else if let found = ProcessSpawn.find(
            program,
            searchPath: self.environment["PATH"],
            workingDirectory: "/"
        ) {
            path = found
        } else {
            throw SlurmError("\(program) was not found in PATH (is Slurm's client installed? see --slurm-bin)")
        }
        let environment = environment ?? self.environment
        let timeoutMilliseconds = Int32(min(timeout.components.seconds * 1000, Int64(Int32.max)))
        return try await DedicatedThread.run(name: "tyger-slurm") {
            let run: CapturedRun?
            do {
                run = try ProcessSpawn.runCapturing(
                    path,
                    arguments: [path] + arguments,
                    environment: environment,
                    input: Array((input ?? "").utf8),
                    timeoutMilliseconds: timeoutMilliseconds,
                    outputLimit: 16 << 20,
                    captureError: true
                )
            } catch {
                throw SlurmError("cannot run \(path): \(error)")
            }
            guard let run else {
                throw SlurmError("\(program) did not answer within \(timeoutMilliseconds / 1000) s")
            }
            return Result(
                code: run.code,
                output: String(decoding: run.output, as: UTF8.self),
                error: String(decoding: run.error, as: UTF8.self)
            )
        }
    }
}

/// A failure to talk to Slurm, in words.
public struct SlurmError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
