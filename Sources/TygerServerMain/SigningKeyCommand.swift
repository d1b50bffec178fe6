import ArgumentParser
import Foundation
import Logging
import TygerControlPlane
import TygerCore
import TygerIO
import TygerPostgres
import TygerServer

/// `tyger-server signing-key`: prints the public key that checks the server's access URLs, for its data planes.
struct SigningKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing-key",
        abstract: "Print the public key of the server's access URLs (PEM), creating the key on first use.",
        discussion: """
            Give it to each data plane of the server: tyger-server data-plane --signing-key FILE. After a key \
            rotation (docs/server.md), give them the new key too, beside the old one, until the old URLs expire.
            """
    )

    @OptionGroup var options: DataDirectoryOptions

    @Option(
        name: .long,
        help:
            "The PostgreSQL database of servers started with --database: the key they share (stored there by the first)."
    )
    var database: String?

    @Flag(
        name: .long,
        help: """
            With --database: make a new key; the old one still checks the URLs it signed. Servers use the new key             when they next start.
            """
    )
    var rotate = false

    func validate() throws {
        if rotate && database == nil { throw ValidationError("--rotate needs --database") }
    }

    func run() async throws {
        do {
            try options.prepare()
            var keys = try SigningKeys.loadOrCreate(directory: DataDirectoryLayout(root: options.dataDir).keysPath)
            if let database {
                let shared = try await PostgresDatabase(
                    url: database,
                    logger: Logger(label: "tyger-server") { _ in
                        SwiftLogNoOpLogHandler()
                    }
                )
                defer { shared.shutdown() }
                if rotate { try await PostgresSigningKeys.rotate(database: shared) }
                keys = try await PostgresSigningKeys.shared(local: keys, database: shared)
            }
            print(keys.publicKeyPEM)
        } catch let error as TygerControlPlaneError {
            TokenCommand.stderr("error: \(error.message)")
            throw ExitCode.failure
        } catch let error as TygerServerError {
            TokenCommand.stderr("error: \(error)")
            throw ExitCode.failure
        } catch {
            TokenCommand.stderr("error: cannot create \(options.dataDir): \(error.localizedDescription)")
            throw ExitCode.failure
        }
    }
}
