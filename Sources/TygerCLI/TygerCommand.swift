import ArgumentParser
import TygerIO

/// The `tyger` command line.
@main
struct TygerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tyger",
        abstract: "Tyger for Swift: stream data through buffers and runs.",
        version: TygerVersion.current,
        subcommands: [
            BufferCommand.self, CodespecCommand.self, RunCommand.self, LoginCommand.self, LogoutCommand.self,
            APICommand.self, RunAgentCommand.self,
        ]
    )

    static func main() async {
        FileDescriptorOps.ignoreSIGPIPE()
        // What the CLI creates (its home, the embedded server it starts, file:// buffers) is private to the user.
        ProcessOps.keepNewFilesPrivate()
        // --help and --version are ArgumentParser's to print (exit 0); parse and validate() failures are one
        // `Error: …` line and exit 64 (CLIError).
        var command: any ParsableCommand
        do {
            let (level, format, arguments) = try CLILogging.extract(from: Array(CommandLine.arguments.dropFirst()))
            try CLILogging.bootstrap(level: level, format: format)
            command = try parseAsRoot(arguments)
        } catch {
            exit(withError: CLIError.parseFailure(error))
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: CLIError.presentable(error))
        }
    }
}

enum TygerVersion {
    static let current = "0.1.0"
}
