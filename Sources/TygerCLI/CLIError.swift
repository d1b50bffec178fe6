import ArgumentParser
import Logging
import TygerClient
import TygerCore
import TygerIO
import TygerModel
import TygerStorage

/// Turns any error into what the CLI prints: one line on stderr and a non-zero exit.
enum CLIError {
    static func presentable(_ error: any Error) -> any Error {
        switch error {
        case is ExitCode, is CleanExit, is ValidationError: return error
        case let e as TygerIOError where e.code == .brokenPipe:
            // The reader of our output went away (`tyger buffer read ... | head`): not an error for us.
            return ExitCode.success
        case is CancellationError:
            logger.error("Canceled")
            return ExitCode(130)
        case is TygerCoreError, is TygerIOError, is BlobStoreError, is UsageError, is TygerClientError, is RunFailed,
            is TygerModelError:
            logger.error("\(message(error))")
            return ExitCode.failure
        default:
            // ArgumentParser's own errors (`--help` runs a help command that throws one) and anything unexpected:
            // ArgumentParser presents them (help text and exit 0, or "Error: ..." and a failure code).
            return error
        }
    }

    static func message(_ error: any Error) -> String {
        switch error {
        case let e as TygerCoreError: e.message
        case let e as TygerIOError: e.message
        case let e as BlobStoreError: e.message
        case let e as UsageError: e.message
        case let e as RunFailed: e.message
        case let e as TygerClientError: e.message
        case let e as TygerModelError: e.message
        default: String(describing: error)
        }
    }
}

/// A user mistake found after parsing (bad URL, missing file): printed as is.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
