import ArgumentParser
import Foundation
import Logging
import TygerClient
import TygerCore
import TygerIO
import TygerModel
import TygerStorage

/// Turns any error into what the CLI prints and its exit status (the policy is in the README, "Exit status"):
///
/// - 64 (`EX_USAGE`), one line `Error: …` on stderr: the command line itself is wrong, whatever the world holds
///   (unknown command or option, a missing or malformed value, options that do not go together). Found by
///   ArgumentParser, `validate()`, or while running (``UsageError``, `ValidationError`), before anything is sent.
/// - 1, one logged line (`… ERR …`): running failed; the arguments were well formed but the world disagrees (a file
///   named on the command line is missing or unreadable or holds a bad spec, a buffer or run does not exist, the
///   server cannot be reached, the run failed).
/// - 130: interrupted (Ctrl-C); 0 when the reader of our output goes away (`… | head`).
/// - `tyger run wait` adds 2 (the run was canceled) and 124 (its `--timeout` passed first).
enum CLIError {
    /// The exit status of a usage error.
    static let usage = ExitCode(64)

    static func presentable(_ error: any Error) -> any Error {
        switch error {
        case is ExitCode, is CleanExit: return error
        case let e as ValidationError: return usageError(e.message)
        case let e as UsageError: return usageError(e.message)
        case let e as TygerIOError where e.code == .brokenPipe:
            // The reader of our output went away (`tyger buffer read ... | head`): not an error for us.
            return ExitCode.success
        case is CancellationError:
            logger.error("Canceled")
            return ExitCode(130)
        case is TygerCoreError, is TygerIOError, is BlobStoreError, is TygerClientError, is CommandFailure,
            is TygerModelError:
            logger.error("\(oneLine(message(error)))")
            return ExitCode.failure
        default:
            // ArgumentParser's own (`--help` runs a help command that throws one: exit 0, printed by ArgumentParser;
            // its usage errors: 64) and anything unexpected (a Foundation error: one logged line, exit 1).
            switch TygerCommand.exitCode(for: error) {
            case .success: return error
            case .validationFailure: return usageError(TygerCommand.message(for: error))
            default:
                logger.error("\(oneLine(TygerCommand.message(for: error)))")
                return ExitCode.failure
            }
        }
    }

    /// What to exit with when the command line does not parse: help and `--version` as ArgumentParser prints them
    /// (exit 0), every parse or validation error as one `Error: …` line and exit 64, with the `--help` hint of the
    /// (sub)command when ArgumentParser names one.
    static func parseFailure(_ error: any Error) -> any Error {
        guard TygerCommand.exitCode(for: error) == .validationFailure else { return error }
        var line = oneLine(TygerCommand.message(for: error))
        if line.hasPrefix("Error: ") { line.removeFirst("Error: ".count) }
        let full = TygerCommand.fullMessage(for: error)
        if let see = full.range(of: "See '"), let end = full[see.upperBound...].firstIndex(of: "'") {
            line += " (see '\(full[see.upperBound..<end])')"
        }
        return usageError(line)
    }

    /// Prints a usage error's one line and returns exit 64.
    static func usageError(_ message: String) -> ExitCode {
        Console.writeError("Error: \(oneLine(message))\n")
        return usage
    }

    static func message(_ error: any Error) -> String {
        switch error {
        case let e as TygerCoreError: e.message
        case let e as TygerIOError: e.message
        case let e as BlobStoreError: e.message
        case let e as UsageError: e.message
        case let e as CommandFailure: e.message
        case let e as TygerClientError: e.message
        case let e as TygerModelError: e.message
        default: String(describing: error)
        }
    }

    /// `text` on one line: line breaks (a YAML problem's context, a wrapped parser message) become spaces.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
            .joined(separator: " ")
    }
}

/// A mistake in the command line found after parsing (a malformed `--ttl`, `--tag` or `--since`, an unsupported
/// URL scheme): exit 64 with one `Error: …` line.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// A failure while running (a file that cannot be read, a run that failed, a refused ETag): exit 1 with the message
/// logged on one line.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
