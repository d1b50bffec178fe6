import ArgumentParser
import Foundation
import TygerIO

/// `tyger-server`: runs the Tyger server and manages its bearer tokens.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tyger-server",
        abstract: "The Tyger server: buffer data plane, signed access URLs and bearer tokens.",
        subcommands: [
            RunCommand.self, DataPlaneCommand.self, TokenCommand.self, SigningKeyCommand.self, KubernetesCommand.self,
        ]
    )
}

/// Options every subcommand shares.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (buffers, keys, tokens, the unix socket).")
    var dataDir: String

    func validate() throws {
        guard !dataDir.isEmpty else { throw ValidationError("--data-dir must not be empty") }
    }

    /// Makes everything this process creates private (umask 077), and the data directory (with its parents) mode
    /// 0700, also when it existed: buffers, databases, keys and logs are the users' data.
    func prepare() throws {
        ProcessOps.keepNewFilesPrivate()
        try FileManager.default.createDirectory(
            atPath: dataDir,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        try PathOps.setPermissions(dataDir, 0o700)
    }
}
