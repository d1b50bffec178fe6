import Foundation
public import Hummingbird
public import Logging
public import ServiceLifecycle
private import Synchronization
import TygerControlPlane
import TygerCore
public import TygerModel
public import TygerRunEngine
import TygerStorage

/// Mounts codespecs and runs (`/codespecs/**`, `/runs/**`) and the ephemeral-buffer relay (`/relay/<id>`), and runs
/// the run engine beside the listeners.
///
/// Buffers the runs create come from the buffers control plane; each buffer's data is the server's own
/// `FileBlobStore` directory, which the local executor streams to and from the run's named pipes.
public final class RunsControlPlane: ControlPlaneRoutes {
    private let buffers: BuffersControlPlane
    private let store: any RunEngineStore
    private let executor: any Executor
    private let configure: @Sendable (inout RunEngineConfiguration) -> Void
    private let logger: Logger
    private let engine = Mutex<RunEngine?>(nil)

    /// - Parameters:
    ///   - buffers: The buffers control plane (creates the buffers runs need).
    ///   - store: Codespec and run repositories.
    ///   - executor: What runs the codespecs; default host processes.
    ///   - configure: Adjusts the engine configuration (timings).
    public init(
        buffers: BuffersControlPlane,
        store: any RunEngineStore,
        executor: any Executor = LocalProcessExecutor(),
        logger: Logger,
        configure: @escaping @Sendable (inout RunEngineConfiguration) -> Void = { _ in }
    ) {
        self.buffers = buffers
        self.store = store
        self.executor = executor
        self.logger = logger
        self.configure = configure
    }

    /// The engine, created once per server.
    public func engine(server: TygerServerApplication) -> RunEngine {
        engine.withLock { existing in
            if let existing { return existing }
            let manager = buffers.manager(server: server)
            var configuration = RunEngineConfiguration(dataDirectory: server.layout.root)
            let endpoints = server.endpoints
            configuration.advertisedEndpoint = { endpoints.tcp }
            // An executor whose processes run on other machines reaches buffers and reports through the TCP listener.
            configuration.bufferAccessURL = { id, writeable, ttl in
                guard endpoints.tcp != nil else { throw Self.noTCPListener }
                return try await manager.accessForRunProcesses(id: id, writeable: writeable, ttl: ttl).uri
            }
            let reportIssuer = server.issuer
            configuration.agentReportURL = { runId, ttl in
                guard var endpoint = endpoints.tcp else { throw Self.noTCPListener }
                while endpoint.hasSuffix("/") { endpoint.removeLast() }
                return try AgentController.reportURL(runId: runId, ttl: ttl, endpoint: endpoint, issuer: reportIssuer)
            }
            configure(&configuration)
            let storage = server.buffers
            let s3 = server.configuration.s3Buffers
            let planes = server.configuration.dataPlanes
            let issuer = server.issuer
            let created = RunEngine(
                configuration: configuration,
                codespecs: store.codespecs,
                runs: store.runs,
                executor: executor,
                coordination: store.coordination,
                blobStore: { id -> any BlobStore in
                    if !planes.isEmpty, let location = try? await manager.location(of: id),
                        let plane = planes.named(location),
                        let store = try? plane.store(for: id, issuer: issuer)
                    {
                        return store
                    }
                    if let s3 {
                        return S3LeasedBlobStore(
                            store: s3.store(for: id),
                            leases: S3WriterLeases(manager: manager, buffers: s3)
                        )
                    }
                    return storage.store(for: id)
                },
                createBuffer: { tags, expiresAt in
                    try await manager.create(Buffer(expiresAt: expiresAt, tags: tags)).id
                },
                expireBuffers: { ids, expiresAt in
                    for id in ids { try await Self.setExpiry(of: id, to: expiresAt, manager: manager) }
                },
                bufferExists: { id in (try? await manager.get(id: id)) != nil },
                logger: logger
            )
            existing = created
            return created
        }
    }

    private static let noTCPListener = TygerRunEngineError(
        .executorFailure,
        "the executor's jobs run on other machines and need this server's TCP listener (--tcp, and --advertise-url when it is bound to a wildcard address)"
    )

    /// Sets a buffer's expiry, keeping its tags (an update replaces both); a buffer deleted meanwhile is skipped, and
    /// a concurrent tag change is retried.
    private static func setExpiry(of id: String, to expiresAt: Date, manager: BufferManager) async throws {
        for _ in 0..<5 {
            guard let record = try? await manager.get(id: id) else { return }  // deleted meanwhile
            if try await setExpiry(of: record, to: expiresAt, manager: manager) { return }
        }
    }

    /// One attempt of ``setExpiry(of:to:manager:)``: `false` when the buffer changed since `record` was read.
    private static func setExpiry(
        of record: BufferRecord,
        to expiresAt: Date,
        manager: BufferManager
    ) async throws
        -> Bool
    {
        let update = BufferUpdate(expiresAt: expiresAt, tags: record.tags)
        do {
            _ = try await manager.update(id: record.id, update, ifMatch: record.eTag)
            return true
        } catch {
            if error.code == .preconditionFailed { return false }
            if error.code == .notFound { return true }
            throw error
        }
    }

    public func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication) {
        let engine = engine(server: server)
        buffers.ephemeralBuffers.bind(RunEphemeralBuffers(engine: engine, server: server))
        let versioned = router.group().add(middleware: APIVersionMiddleware<AppRequestContext>())
        CodespecsController(engine: engine).addRoutes(to: versioned)
        RunsController(engine: engine).addRoutes(to: versioned)
        RelayController(engine: engine, validator: server.validator).addRoutes(to: router)
        AgentController(engine: engine, validator: server.validator).addRoutes(to: router)
    }

    public func services(server: TygerServerApplication) -> [any Service] { [engine(server: server)] }

    /// Runs add ephemeral buffers (the relay) and the executor's capabilities, and name the executor.
    public func describe(into metadata: inout ServiceMetadata) {
        let description = executor.description
        metadata.capabilities = (metadata.capabilities ?? []) + ["EphemeralBuffers"] + description.capabilities
        metadata.executor = ExecutorMetadata(kind: description.kind, engine: description.engine)
    }

    /// The relay and the agents' reports check their signed URLs themselves.
    public var signedPathPrefixes: [String] { [RelayController.pathPrefix, AgentController.pathPrefix] }
}
