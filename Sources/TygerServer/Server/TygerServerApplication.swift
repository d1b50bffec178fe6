public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
public import ServiceLifecycle
public import TygerCore
import TygerStorage
import UnixSignals

/// The Tyger server: data plane, signed URLs, tokens, the system routes and any plugged-in control plane, served
/// on a unix socket and optionally on TCP, all in one `ServiceGroup`.
///
/// ```swift
/// var configuration = TygerServerConfiguration(dataDirectory: "/var/lib/tyger")
/// configuration.tcp = TCPListenerConfiguration(host: "127.0.0.1", port: 8080)
/// let app = try TygerServerApplication(configuration: configuration)
/// try await app.run(logger: logger)   // until SIGTERM/SIGINT
/// ```
public struct TygerServerApplication: Sendable {
    /// The configuration it was made with.
    public let configuration: TygerServerConfiguration
    /// The data directory's layout.
    public let layout: DataDirectoryLayout
    /// The buffers (containers) of the data directory.
    public let buffers: BufferStorage
    /// The signing keys.
    public let keys: SigningKeys
    /// Issues access URLs.
    public let issuer: SignedURLIssuer
    /// Checks access URLs.
    public let validator: SignedURLValidator
    /// Bearer tokens.
    public let tokens: any TokenStore
    /// The listeners' base URLs (TCP known once bound).
    public let endpoints: ListenerEndpoints
    /// Admits the TCP listener's connections within `configuration.connectionLimits`.
    public let connections: ConnectionGuard

    /// Opens the data directory: creates it (0700), its buffers and keys directories, and the signing key on first
    /// start.
    ///
    /// - Parameter configuration: The configuration.
    /// - Throws: `TygerServerError` `.io` when directories cannot be created, `.signingKey` for bad key files,
    ///   `.invalidConfiguration` when no listener is enabled, TLS is half-configured or a connection limit is not
    ///   positive.
    public init(configuration: TygerServerConfiguration) throws {
        guard configuration.unixSocket || configuration.tcp != nil else {
            throw TygerServerError(.invalidConfiguration, "no listener: enable the unix socket or a TCP address")
        }
        if let tcp = configuration.tcp, (tcp.tlsCertificatePath == nil) != (tcp.tlsKeyPath == nil) {
            throw TygerServerError(.invalidConfiguration, "TLS needs both a certificate and a private key")
        }
        try configuration.connectionLimits.validate()
        self.configuration = configuration
        self.connections = ConnectionGuard(limits: configuration.connectionLimits)
        self.layout = DataDirectoryLayout(root: configuration.dataDirectory)
        try PrivateFile.makeDirectory(layout.root, mode: 0o700)
        self.buffers = BufferStorage(root: layout.buffersPath)
        do {
            try buffers.ensureRoot()
        } catch {
            throw TygerServerError(.io, "cannot create \(layout.buffersPath)", cause: error)
        }
        // Uploads that a crash interrupted leave temporary files beside their blobs: nobody finishes them.
        FileBlobStore.removeStaleTemporaryFiles(under: layout.buffersPath)
        self.keys = try configuration.signingKeys ?? SigningKeys.loadOrCreate(directory: layout.keysPath)
        self.issuer = SignedURLIssuer(keys: keys, clock: configuration.clock)
        self.validator = SignedURLValidator(keys: keys, trusted: configuration.trustedKeys, clock: configuration.clock)
        self.tokens =
            configuration.tokenStore ?? JSONFileTokenStore(path: layout.tokensPath, clock: configuration.clock)
        self.endpoints = ListenerEndpoints(unixSocketPath: configuration.unixSocket ? layout.socketPath : nil)
    }

    /// Builds the router: middleware (request ID and access log, errors, authentication), `/healthcheck`,
    /// `/metadata`, the OpenAPI document, the data plane, then the configured control-plane routes.
    public func buildRouter() -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: RequestLoggingMiddleware(level: configuration.accessLogLevel))
        router.add(middleware: ErrorMiddleware())
        let signed =
            ["/containers/", S3AccessController.pathPrefix] + configuration.controlPlane.flatMap(\.signedPathPrefixes)
        router.add(
            middleware: AuthenticationMiddleware(tokens: tokens, signedPathPrefixes: signed, connections: connections)
        )
        SystemController(
            endpoints: endpoints,
            controlPlane: configuration.controlPlane,
            dataPlanes: configuration.dataPlanes
        )
        .addRoutes(to: router)
        let bufferManager = configuration.controlPlane.lazy.compactMap { $0.bufferManager(server: self) }.first
        DataPlaneController(
            buffers: buffers,
            validator: validator,
            maxBlobSize: configuration.maxBlobSize,
            writerLeases: bufferManager ?? configuration.dataPlaneWriterLeases
        )
        .addRoutes(to: router)
        // S3 buffers are the control plane's: without one there are none to give access to.
        if let s3 = configuration.s3Buffers, let bufferManager {
            S3AccessController(
                buffers: s3,
                leases: S3WriterLeases(manager: bufferManager, buffers: s3),
                validator: validator,
                clock: configuration.clock,
                maxLifetime: configuration.maxPresignedLifetime
            )
            .addRoutes(to: router)
        }
        for routes in configuration.controlPlane { routes.addRoutes(to: router, server: self) }
        return router
    }

    /// Makes the services to run: one Hummingbird application per listener, sharing one router, plus the control
    /// plane's services.
    ///
    /// - Parameter logger: The server's logger.
    /// - Returns: The services, for a `ServiceGroup`.
    /// - Throws: `TygerServerError` `.alreadyRunning` when another server listens on the socket, `.io` when a stale
    ///   socket cannot be removed, `.invalidConfiguration` for unreadable TLS files.
    public func makeServices(logger: Logger) throws -> [any Service] {
        let responder = buildRouter().buildResponder()
        var services: [any Service] = []
        if configuration.unixSocket {
            try UnixSocketFile.prepare(layout.socketPath)
            let path = layout.socketPath
            let endpoint = endpoints.unixSocket!  // set whenever the unix socket is enabled
            let onListening = configuration.onListening
            services.append(
                Application(
                    responder: responder,
                    server: HTTPServerBuilder { responder in LargeReadsChannel(base: HTTP1Channel(responder: responder))
                    },
                    configuration: ApplicationConfiguration(
                        address: .unixDomainSocket(path: path),
                        serverName: "tyger-server"
                    ),
                    onServerRunning: { _ in
                        UnixSocketFile.restrict(path)
                        onListening?(endpoint)
                    },
                    logger: logger
                )
            )
        }
        if let tcp = configuration.tcp {
            let tls: TLSConfiguration? =
                if let certificate = tcp.tlsCertificatePath, let key = tcp.tlsKeyPath {
                    try Self.tlsConfiguration(certificate: certificate, key: key)
                } else {
                    nil
                }
            let connections = self.connections
            // Every TCP connection goes through the guard (cap, unauthenticated budget) and its deadlines.
            let server = HTTPServerBuilder { responder in
                let http = HTTP1Channel(responder: responder)
                if let tls {
                    return GuardedChannel(base: try TLSChannel(http, tlsConfiguration: tls), connections: connections)
                }
                return GuardedChannel(base: http, connections: connections)
            }
            let scheme = tcp.tlsCertificatePath == nil ? "http" : "https"
            let endpoints = self.endpoints
            let onListening = configuration.onListening
            let host = tcp.host
            let advertised = tcp.advertisedURL
            services.append(
                Application(
                    responder: responder,
                    server: server,
                    configuration: ApplicationConfiguration(
                        address: .hostname(tcp.host, port: tcp.port),
                        serverName: "tyger-server"
                    ),
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? tcp.port
                        var shown = host == "0.0.0.0" || host == "::" ? "localhost" : host
                        if shown.contains(":") { shown = "[\(shown)]" }
                        let endpoint = "\(scheme)://\(shown):\(port)"
                        endpoints.setTCP(advertised ?? endpoint)
                        onListening?(endpoint)
                        if let advertised {
                            logger.info("advertising the TCP listener", metadata: ["url": "\(advertised)"])
                        } else if host == "0.0.0.0" || host == "::" {
                            logger.warning(
                                "access URLs for TCP clients name localhost: set --advertise-url to the URL clients on other machines use",
                                metadata: ["endpoint": "\(endpoint)"]
                            )
                        }
                    },
                    logger: logger
                )
            )
        }
        for routes in configuration.controlPlane { services += routes.services(server: self) }
        return services
    }

    /// Runs the server until SIGTERM or SIGINT, then shuts down gracefully (in-flight requests finish).
    ///
    /// - Parameter logger: The server's logger.
    /// - Throws: What `makeServices` throws, or the first service failure (a port in use, ...).
    public func run(logger: Logger) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: try makeServices(logger: logger),
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        if configuration.unixSocket { UnixSocketFile.remove(layout.socketPath) }
    }

    static func tlsConfiguration(certificate: String, key: String) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            return TLSConfiguration.makeServerConfiguration(
                certificateChain: chain,
                privateKey: .privateKey(privateKey)
            )
        } catch {
            throw TygerServerError(
                .invalidConfiguration,
                "cannot load the TLS certificate \(certificate) or key \(key)",
                cause: error
            )
        }
    }
}
