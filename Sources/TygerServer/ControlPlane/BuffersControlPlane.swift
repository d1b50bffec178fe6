public import Hummingbird
public import Logging
public import ServiceLifecycle
import Synchronization
import TygerClient
public import TygerControlPlane
import TygerModel

/// Mounts the buffers control plane (`/buffers/**`) on the server and runs its expiry service.
///
/// Buffers live in the server's data plane (`<dataDir>/buffers/<id>`); access URLs are signed for the listener the
/// caller used (a TCP caller gets a TCP URL, a socket caller a socket URL, `preferTcp=true` asks for TCP).
public final class BuffersControlPlane: ControlPlaneRoutes {
    private let repository: any BufferRepository
    private let configuration: BufferManager.Configuration
    private let expiryInterval: Duration
    private let logger: Logger
    private let manager = Mutex<BufferManager?>(nil)
    /// Access to ephemeral buffers, bound by the runs control plane once its engine exists.
    let ephemeralBuffers = LateBoundEphemeralBuffers()

    /// - Parameters:
    ///   - repository: Where buffer records live (SQLite in the data directory for `tyger-server`).
    ///   - configuration: Lifetimes, access-URL TTL bounds.
    ///   - expiryInterval: Time between expiry passes (upstream: 30 s).
    public init(
        repository: any BufferRepository,
        configuration: BufferManager.Configuration = .init(),
        expiryInterval: Duration = .seconds(30),
        logger: Logger
    ) {
        self.repository = repository
        self.configuration = configuration
        self.expiryInterval = expiryInterval
        self.logger = logger
    }

    /// The manager, created once per server.
    public func manager(server: TygerServerApplication) -> BufferManager {
        manager.withLock { existing in
            if let existing { return existing }
            let own: any BufferStorageProvider =
                server.configuration.s3Buffers.map { S3BufferStorageProvider(server: server, buffers: $0) }
                ?? LocalBufferStorageProvider(server: server)
            let created = BufferManager(
                repository: repository,
                storage: server.configuration.dataPlanes.isEmpty
                    ? own
                    : DataPlaneRoutingStorage(own: own, planes: server.configuration.dataPlanes, issuer: server.issuer),
                configuration: configuration,
                ephemeralBuffers: ephemeralBuffers
            )
            existing = created
            return created
        }
    }

    public func bufferManager(server: TygerServerApplication) -> BufferManager? { manager(server: server) }

    public func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication) {
        let group = router.group("buffers").add(middleware: APIVersionMiddleware<AppRequestContext>())
        BuffersController(manager: manager(server: server)).addRoutes(to: group)
    }

    public func services(server: TygerServerApplication) -> [any Service] {
        [
            GracefulService(
                BufferExpiryService(manager: manager(server: server), interval: expiryInterval, logger: logger)
            )
        ]
    }
}

/// Runs a plain `run()` loop as a `Service` that stops on graceful shutdown.
struct GracefulService<S: Sendable>: Service {
    let inner: S
    let body: @Sendable (S) async throws -> Void
    init(_ inner: S) where S == BufferExpiryService<ContinuousClock> {
        self.inner = inner
        self.body = { try await $0.run() }
    }
    init(_ inner: S, run: @escaping @Sendable (S) async throws -> Void) {
        self.inner = inner
        self.body = run
    }
    func run() async throws {
        let inner = inner
        let body = body
        try await cancelWhenGracefulShutdown { try await body(inner) }
    }
}

/// The listener of the request being handled, for code below the router that signs URLs (set by
/// `BuffersController` around `BufferManager.access`).
enum CurrentRequest {
    @TaskLocal static var transport: ListenerTransport = .unknown
}

/// The ephemeral buffers of the run engine, bound after the buffer manager is made (the engine needs the manager
/// to create the buffers of runs, the manager needs the engine for ephemeral access).
final class LateBoundEphemeralBuffers: EphemeralBufferProvider {
    private let bound = Mutex<(any EphemeralBufferProvider)?>(nil)

    func bind(_ provider: any EphemeralBufferProvider) { bound.withLock { $0 = provider } }

    func access(_ id: EphemeralBufferID, writeable: Bool, preferTCP: Bool, ttl: Duration) async throws -> BufferAccess {
        guard let provider = bound.withLock({ $0 }) else {
            throw TygerControlPlaneError(code: .notFound, message: "The resource was not found")
        }
        return try await provider.access(id, writeable: writeable, preferTCP: preferTCP, ttl: ttl)
    }
}

/// The control plane's view of the server's own data plane.
struct LocalBufferStorageProvider: BufferStorageProvider {
    let server: TygerServerApplication

    func createContainer(id: String, location: String) async throws { try server.buffers.create(id) }

    func deleteContainer(id: String, location: String) async throws {
        if server.buffers.exists(id) { try server.buffers.delete(id) }
    }

    func containerExists(id: String, location: String) async throws -> Bool { server.buffers.exists(id) }

    func accessURL(
        id: String,
        location: String,
        writeable: Bool,
        ttl: Duration,
        preferTCP: Bool
    ) async throws
        -> String
    {
        try server.issuer.accessURL(
            containerId: id,
            writeable: writeable,
            ttl: ttl,
            endpoint: try server.accessEndpoint(preferTCP: preferTCP)
        )
    }

    func storageAccounts() async throws -> [StorageAccount] {
        [
            StorageAccount(
                name: "local",
                location: "local",
                endpoint: (server.endpoints.unixSocket ?? server.endpoints.tcp ?? "") + "/"
            )
        ]
    }
}

/// The control plane's view of buffers kept in an S3-compatible store: access URLs lead to the presigning routes
/// (``S3AccessController``), never to the bytes.
struct S3BufferStorageProvider: BufferStorageProvider {
    let server: TygerServerApplication
    let buffers: S3Buffers

    func createContainer(id: String, location: String) async throws { try await buffers.create(id) }

    func deleteContainer(id: String, location: String) async throws {
        if try await buffers.exists(id) { try await buffers.delete(id) }
    }

    func containerExists(id: String, location: String) async throws -> Bool { try await buffers.exists(id) }

    func accessURL(
        id: String,
        location: String,
        writeable: Bool,
        ttl: Duration,
        preferTCP: Bool
    ) async throws
        -> String
    {
        let permissions: Set<SignedURLPermission> = writeable ? [.createBlob, .readBlob] : [.readBlob]
        return try server.accessEndpoint(preferTCP: preferTCP) + S3AccessController.pathPrefix + id + "?"
            + server.issuer.query(containerId: id, permissions: permissions, ttl: ttl)
    }

    func storageAccounts() async throws -> [StorageAccount] {
        let location = buffers.client.location
        return [
            StorageAccount(
                name: location.bucket,
                location: location.region,
                endpoint: location.endpoint + "/" + location.bucket + "/" + location.prefix
            )
        ]
    }
}

extension TygerServerApplication {
    /// The listener access URLs are signed for: the caller's, or TCP when it asks for it.
    func accessEndpoint(preferTCP: Bool) throws -> String {
        guard var endpoint = endpoints.endpoint(for: preferTCP ? .tcp : CurrentRequest.transport) else {
            throw TygerServerError(.invalidConfiguration, "no listener to issue access URLs for")
        }
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        return endpoint
    }
}
