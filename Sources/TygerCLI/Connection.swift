import TygerClient
import TygerCore

/// How this CLI reaches its server: the saved login, or the embedded local server.
struct Connection: Sendable {
    let client: ControlPlaneClient
    /// The embedded server's data directory, when this is the embedded server.
    let embedded: DataDirectoryLayout?

    var isEmbedded: Bool { embedded != nil }
}

/// Runs `body` with a control-plane connection whose HTTP client is shut down afterwards, also on errors.
///
/// A saved login is used as is; otherwise the embedded server is started if needed.
func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
    if let login = try LoginState.load() {
        let server = try ServiceURL(login.serverURL)
        return try await HTTPTransport.withTransport(
            caCertificatePath: try login.caCertificateFile(),
            bearerToken: login.token
        ) { transport in
            let client = ControlPlaneClient(server: server, transport: transport, logger: logger)
            return try await body(Connection(client: client, embedded: nil))
        }
    }
    return try await HTTPTransport.withTransport { transport in
        let client = ControlPlaneClient(server: LocalServer.socketURL, transport: transport, logger: logger)
        try await LocalServer.ensureRunning(client)
        return try await body(Connection(client: client, embedded: TygerHome.server))
    }
}
