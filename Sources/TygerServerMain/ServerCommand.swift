import ArgumentParser

/// `tyger-server`: runs the Tyger server and manages its bearer tokens.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tyger-server",
        abstract: "The Tyger server: buffer data plane, signed access URLs and bearer tokens.",
        subcommands: [RunCommand.self, DataPlaneCommand.self, TokenCommand.self, SigningKeyCommand.self]
    )
}

/// Options every subcommand shares.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (buffers, keys, tokens, the unix socket).")
    var dataDir: String

    func validate() throws {
        guard !dataDir.isEmpty else { throw ValidationError("--data-dir must not be empty") }
    }
}
