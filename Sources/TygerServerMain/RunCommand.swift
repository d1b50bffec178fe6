import ArgumentParser
import Foundation
import Logging
import Synchronization
import TygerClient
import TygerContainers
import TygerControlPlane
import TygerCore
import TygerIO
import TygerModel
import TygerPostgres
import TygerRunEngine
import TygerServer
import TygerSlurm
import TygerStorage

#if canImport(Glibc)
import Glibc
#endif

/// `tyger-server run`: serves until SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the server.",
        discussion: """
            Listens on the unix socket <data-dir>/api.sock (trusted, mode 0600) and, with --tcp, on a TCP address \
            where requests need a bearer token (see 'tyger-server token') or a signed access URL. Stops gracefully \
            on SIGTERM or SIGINT.
            """
    )

    @OptionGroup var options: DataDirectoryOptions

    @OptionGroup var connections: ConnectionOptions

    @OptionGroup var listener: ListenerOptions

    @Option(name: .long, help: "How long a soft-deleted buffer is kept before it is purged (e.g. 24h).")
    var softDeletedLifetime: String = "24h"

    @Option(name: .long, help: "Lifetime given to a restored buffer (e.g. 30d as 720h); none by default.")
    var activeLifetime: String?

    @Option(name: .long, help: "Time between buffer expiry passes.")
    var expiryInterval: String = "30s"

    @Option(
        name: .long,
        help: """
            How long the buffers a run creates are kept after the run ends, unless its job.bufferTtl says \
            otherwise (e.g. 24h, 30m); 0 keeps them forever.
            """
    )
    var runBufferTTL: String = "24h"

    @Option(
        name: .long,
        help:
            "What runs codespecs: process (host processes), docker (containers, through the Docker Engine API) or slurm (batch jobs on a Slurm cluster; needs --tcp)."
    )
    var executor: String = "process"

    @Option(
        name: .long,
        help:
            "The container engine's API (--executor docker): unix:///PATH or tcp://HOST:PORT. Default: $DOCKER_HOST, else unix:///var/run/docker.sock."
    )
    var dockerHost: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep buffers, codespecs and runs in PostgreSQL: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.",
            discussion: "Default: SQLite files in the data directory. One server per database for now."
        )
    )
    var database: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep buffers' blobs in an S3-compatible store: s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=R.",
            discussion:
                "Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). Default: files in the data directory."
        )
    )
    var blobStore: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A data plane in another process (tyger-server data-plane): NAME=URL. Repeatable.",
            discussion:
                "Buffers created with that location (buffer create --location NAME) live there; it must accept this server's signing key."
        )
    )
    var dataPlane: [String] = []

    @Option(name: .long, help: "When codespec images are pulled (--executor docker): always, missing or never.")
    var pull: String = "missing"

    @Option(name: .long, help: "The network of run containers (--executor docker): none, host or a network's name.")
    var containerNetwork: String = "none"

    @Flag(name: .long, help: "Leave finished run containers in the engine, for debugging (--executor docker).")
    var keepContainers = false

    @Flag(
        name: .long,
        inversion: .prefixedNo,
        help:
            "Run an init process as PID 1 of run containers, so SIGTERM reaches the codespec's process (--executor docker; Podman needs catatonit)."
    )
    var containerInit = true

    @OptionGroup(title: "Slurm (--executor slurm)") var slurm: SlurmOptions

    func validate() throws {
        guard ["process", "docker", "slurm"].contains(executor) else {
            throw ValidationError("unknown --executor '\(executor)': use process, docker or slurm")
        }
        if executor == "slurm", listener.tcp == nil {
            throw ValidationError("--executor slurm needs --tcp: its jobs reach the server's TCP listener")
        }
        try slurm.validate()
        guard ImagePullPolicy(rawValue: pull) != nil else {
            throw ValidationError("unknown --pull '\(pull)': use always, missing or never")
        }
        guard !containerNetwork.isEmpty else { throw ValidationError("--container-network must not be empty") }
        for (name, value) in [("--soft-deleted-lifetime", softDeletedLifetime), ("--expiry-interval", expiryInterval)]
            + (activeLifetime.map { [("--active-lifetime", $0)] } ?? [])
        {
            do {
                guard try DurationParser.parse(value) > .zero else { throw ValidationError("\(name) must be positive") }
            } catch let e as TygerCoreError { throw ValidationError("\(name): \(e.message)") }
        }
        do { _ = try DurationParser.parse(runBufferTTL) } catch let e as TygerCoreError {
            throw ValidationError("--run-buffer-ttl: \(e.message)")
        }
        var names = Set(["local"])
        for text in dataPlane {
            guard let (name, _) = RemoteDataPlane.parse(text) else {
                throw ValidationError("--data-plane '\(text)': expected NAME=URL")
            }
            guard names.insert(name.lowercased()).inserted else {
                throw ValidationError("--data-plane: the name '\(name)' is taken")
            }
        }
        if let blobStore {
            do { _ = try S3Location(parsing: blobStore) } catch let e as BlobStoreError {
                throw ValidationError("--blob-store: \(e.message)")
            }
            guard S3Credentials.fromEnvironment() != nil else {
                throw ValidationError("--blob-store needs credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
        }
    }

    func run() async throws {
        let logger = listener.bootstrapLogging()
        var configuration = try listener.configuration(
            dataDirectory: options.dataDir,
            connections: connections,
            logger: logger
        )
        do {
            try options.prepare()
            let repository: any BufferRepository
            let runStore: any RunEngineStore
            var lockLost: LostLock?
            if let database {
                let shared = try await PostgresDatabase(url: database, logger: logger)
                // Buffers on this server's own disk cannot be reached by another server: such a server keeps the
                // database to itself. Servers whose buffers live in an S3 store share it.
                let alone = blobStore == nil
                // A lock lost to another server (taken while this one was cut off) stops this one: SIGTERM, as an
                // operator would, and exit 1.
                let lost = LostLock()
                lockLost = lost
                guard
                    try await shared.takeForThisServer(
                        exclusive: alone,
                        onLost: {
                            lost.set()
                            kill(getpid(), SIGTERM)
                            // A shutdown that waits on a database connection the network broke can take for ever:
                            // this server must not serve on, so it leaves after 10 s whatever is still going.
                            Task.detached {
                                try? await Task.sleep(for: .seconds(10))
                                logger.critical("did not stop within 10 s of losing the database; exiting")
                                Glibc.exit(1)
                            }
                        }
                    )
                else {
                    shared.shutdown()
                    throw TygerControlPlaneError(
                        code: .databaseFailure,
                        message: alone
                            ? "another tyger-server uses the database \(shared.redactedURL); servers share a database "
                                + "only when their buffers live in an S3 store (--blob-store)"
                            : "a tyger-server whose buffers are on its own disk uses the database "
                                + "\(shared.redactedURL) alone"
                    )
                }
                logger.info(
                    "keeping buffers, codespecs and runs in PostgreSQL",
                    metadata: ["database": "\(shared.redactedURL)", "shared": "\(!alone)"]
                )
                try await shareSecrets(shared, into: &configuration, logger: logger)
                repository = PostgresBufferRepository(database: shared)
                runStore = PostgresRunEngineStore(
                    database: shared,
                    instance: try ServerInstance.id(dataDirectory: options.dataDir)
                )
            } else {
                repository = try SQLiteBufferRepository(
                    path: DataDirectoryLayout(root: options.dataDir).controlPlaneDatabasePath
                )
                runStore = try SQLiteRunEngineStore(directory: options.dataDir)
            }
            var buffers = BufferManager.Configuration()
            buffers.softDeletedLifetime = try DurationParser.parse(softDeletedLifetime)
            buffers.activeLifetime = try activeLifetime.map(DurationParser.parse)
            buffers.dataPlanes = dataPlane.compactMap { RemoteDataPlane.parse($0)?.name }
            // Test-only: a longer writer lease, for tests whose writers must not lose it on a loaded machine.
            if let text = ProcessInfo.processInfo.environment["TYGER_TEST_WRITER_LEASE"], let seconds = Int64(text),
                seconds > 0
            {
                buffers.writerLeaseDuration = .seconds(seconds)
            }
            let buffersControlPlane = BuffersControlPlane(
                repository: repository,
                configuration: buffers,
                expiryInterval: try DurationParser.parse(expiryInterval),
                logger: logger
            )
            let runBufferTTL = try DurationParser.parse(runBufferTTL)
            let runExecutor = try await makeExecutor(logger: logger)
            let runs = RunsControlPlane(
                buffers: buffersControlPlane,
                store: runStore,
                executor: runExecutor,
                logger: logger
            ) { engine in
                engine.runBufferTTL = runBufferTTL == .zero ? nil : runBufferTTL
                // Test-only: a short owner lease, so a test sees another server take over a stopped server's runs.
                if let text = ProcessInfo.processInfo.environment["TYGER_TEST_OWNER_LEASE"], let seconds = Int64(text),
                    seconds > 0
                {
                    engine.ownerLease = .seconds(seconds)
                    engine.heartbeatInterval = .milliseconds(seconds * 200)
                }
                // Test-only: short-lived URLs for the jobs of remote executors, so a test sees their agents renew them.
                if let text = ProcessInfo.processInfo.environment["TYGER_TEST_AGENT_URL_LIFETIME"],
                    let seconds = Int64(text), seconds > 0
                {
                    engine.remoteAccessLifetime = .seconds(seconds)
                }
                // Test-only: the looks behind the database's notices made rare, so a test shows the notices at work.
                if let text = ProcessInfo.processInfo.environment["TYGER_TEST_NOTIFIED_POLL"],
                    let seconds = Int64(text),
                    seconds > 0
                {
                    engine.notifiedPollInterval = .seconds(seconds)
                }
            }
            configuration.controlPlane = [buffersControlPlane, runs]
            try await HTTPTransport.withTransport { transport in
                configuration.dataPlanes = try dataPlane.compactMap(RemoteDataPlane.parse).map {
                    try RemoteDataPlane(name: $0.name, url: $0.url, transport: transport)
                }
                if let blobStore {
                    configuration.s3Buffers = try await openBlobStore(blobStore, transport: transport, logger: logger)
                    // Test-only: presigned URLs that expire within seconds, so a test sees transfers outlive them.
                    if let text = ProcessInfo.processInfo.environment["TYGER_TEST_PRESIGNED_LIFETIME"],
                        let seconds = Int64(text), seconds > 0
                    {
                        configuration.maxPresignedLifetime = min(seconds, configuration.maxPresignedLifetime)
                    }
                }
                let app = try TygerServerApplication(configuration: configuration)
                try await withLogger(logger) { logger in try await app.run(logger: logger) }
            }
            logger.info("stopped")
            if lockLost?.isSet == true { throw ExitCode.failure }
        } catch let error as TygerServerError {
            logger.critical("cannot run the server", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        } catch let error as DockerEngineError {
            logger.critical("cannot run the server", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        } catch let error as TygerControlPlaneError {
            logger.critical("cannot run the server", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        } catch let error as SlurmError {
            logger.critical("cannot run the server", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        } catch let error as BlobStoreError {
            logger.critical("cannot run the server", metadata: ["error": "\(error.message)"])
            throw ExitCode.failure
        }
    }

    /// Tokens and signing keys from the database, so that every server on it accepts the same tokens and URLs. The
    /// data directory's tokens are copied there once (its `tokens.json` is then renamed `tokens.json.imported`); its
    /// keys are stored there when the database has none yet.
    private func shareSecrets(
        _ shared: PostgresDatabase,
        into configuration: inout TygerServerConfiguration,
        logger: Logger
    ) async throws {
        let layout = DataDirectoryLayout(root: options.dataDir)
        let tokens = PostgresTokenStore(database: shared)
        if FileManager.default.fileExists(atPath: layout.tokensPath) {
            var imported = 0
            for record in try await JSONFileTokenStore(path: layout.tokensPath).list() {
                if try await tokens.add(record) { imported += 1 }
            }
            try FileManager.default.moveItem(atPath: layout.tokensPath, toPath: layout.tokensPath + ".imported")
            logger.info(
                "copied the data directory's tokens to the database",
                metadata: ["tokens": "\(imported)", "file": "\(layout.tokensPath).imported"]
            )
        }
        configuration.tokenStore = tokens
        configuration.signingKeys = try await PostgresSigningKeys.shared(
            local: try SigningKeys.loadOrCreate(directory: layout.keysPath),
            database: shared
        )
    }

    /// The S3 store `--blob-store` names, checked: the bucket exists and takes the credentials.
    private func openBlobStore(_ text: String, transport: HTTPTransport, logger: Logger) async throws -> S3Buffers {
        // Both checked in validate().
        let location = try S3Location(parsing: text)
        guard let credentials = S3Credentials.fromEnvironment() else { throw ExitCode.validationFailure }
        let buffers = S3Buffers(client: S3Client(location: location, credentials: credentials, transport: transport))
        let capabilities = try await buffers.check()
        logger.info(
            "keeping buffers in an S3 store",
            metadata: [
                "store": "\(location)",
                "conditionalCreate": "\(capabilities.conditionalCreate)",
                "checksCRC32C": "\(capabilities.checksCRC32C)",
            ]
        )
        return buffers
    }

    /// The executor `--executor` names, connected to its engine.
    private func makeExecutor(logger: Logger) async throws -> any Executor {
        if executor == "slurm" {
            return try await slurm.makeExecutor(
                instanceID: try ServerInstance.id(dataDirectory: options.dataDir),
                logger: logger
            )
        }
        guard executor == "docker" else { return LocalProcessExecutor() }
        var settings = DockerExecutorConfiguration(
            host: dockerHost ?? DockerExecutorConfiguration.defaultHost,
            instanceID: try ServerInstance.id(dataDirectory: options.dataDir)
        )
        settings.pull = ImagePullPolicy(rawValue: pull) ?? .missing  // checked in validate()
        settings.network = containerNetwork
        settings.keepContainers = keepContainers
        settings.initProcess = containerInit
        let created = try await DockerExecutor(configuration: settings, logger: logger)
        logger.info(
            "running codespecs in containers",
            metadata: ["engine": "\(created.description.engine ?? "?")", "host": "\(settings.host)"]
        )
        return created
    }
}

/// This server's instance ID: random, made once per data directory and kept in `<data-dir>/instance-id`, so a
/// restarted server knows its own containers (and leaves other servers' alone).
enum ServerInstance {
    static func id(dataDirectory: String) throws -> String {
        let path = dataDirectory + "/instance-id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if id.count == 16, id.allSatisfy(\.isHexDigit) { return id }
        }
        let id = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }
}

/// Set when the database's server lock went to another server while this one was cut off from the database.
final class LostLock: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
