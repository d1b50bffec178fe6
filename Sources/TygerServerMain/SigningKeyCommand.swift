import ArgumentParser
import Foundation
import TygerCore
import TygerIO
import TygerServer

/// `tyger-server signing-key`: prints the public key that checks the server's access URLs, for its data planes.
struct SigningKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing-key",
        abstract: "Print the public key of the server's access URLs (PEM), creating the key on first use.",
        discussion: """
            Give it to each data plane of the server: tyger-server data-plane --signing-key FILE. After a key \
            rotation (docs/server.md), give them the new key too, beside the old one, until the old URLs expire.
            """
    )

    @OptionGroup var options: DataDirectoryOptions

    func run() throws {
        do {
            try options.prepare()
            let keys = try SigningKeys.loadOrCreate(directory: DataDirectoryLayout(root: options.dataDir).keysPath)
            print(keys.publicKeyPEM)
        } catch let error as TygerServerError {
            TokenCommand.stderr("error: \(error)")
            throw ExitCode.failure
        } catch {
            TokenCommand.stderr("error: cannot create \(options.dataDir): \(error.localizedDescription)")
            throw ExitCode.failure
        }
    }
}
