import ArgumentParser
import Foundation
import Logging
import TygerControlPlane
import TygerCore
import TygerIO
import TygerServer

/// `tyger-server data-plane`: only the blob routes of the buffers in a data directory, for control planes elsewhere.
struct DataPlaneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-plane",
        abstract: "Serve only the data plane: the buffers of --data-dir, to access URLs a control plane signed.",
        discussion: """
            The control plane names this data plane with --data-plane NAME=URL, creates its buffers here and signs \
            their access URLs; this process accepts URLs signed by the keys of --signing-key (each a PEM file with \
            a P-256 public or private key: the control plane's <data-dir>/keys/signing-primary.pem, or its public \
            part). No bearer tokens, buffer metadata or runs: those stay with the control plane.
            """
    )

    /// The data directory's database of writer leases.
    static let leasesFile = "writer-leases.sqlite"

    @OptionGroup var options: DataDirectoryOptions

    @OptionGroup var connections: ConnectionOptions

    @OptionGroup var listener: ListenerOptions

    @Option(
        name: .long,
        help: "A control plane's signing key (PEM, public or private): URLs it signs are accepted. Repeatable."
    )
    var signingKey: [String] = []

    func validate() throws {
        guard !signingKey.isEmpty else {
            throw ValidationError("--signing-key is required: the key of the control plane whose URLs to accept")
        }
    }

    func run() async throws {
        let logger = listener.bootstrapLogging()
        do {
            try options.prepare()
            var configuration = try listener.configuration(
                dataDirectory: options.dataDir,
                connections: connections,
                logger: logger
            )
            configuration.trustedKeys = try signingKey.map { try SigningKeys.publicKey(file: $0) }
            // Its HTTP writers' leases, in its own data directory: they outlive a restart of this process.
            configuration.dataPlaneWriterLeases = BufferManager(
                repository: try SQLiteBufferRepository(path: options.dataDir + "/" + Self.leasesFile),
                storage: LeasesOnlyStorage()
            )
            let app = try TygerServerApplication(configuration: configuration)
            logger.info("serving the data plane", metadata: ["keys": "\(signingKey.count)"])
            try await withLogger(logger) { logger in try await app.run(logger: logger) }
            logger.info("stopped")
        } catch let error as TygerServerError {
            logger.critical("cannot run the data plane", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        } catch let error as TygerIOError {
            logger.critical("cannot run the data plane", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        } catch let error as TygerControlPlaneError {
            logger.critical("cannot run the data plane", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        }
    }
}
