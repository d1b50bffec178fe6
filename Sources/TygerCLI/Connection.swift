import Foundation
import TygerClient

/// How this CLI reaches its server: the saved login, or the embedded local server.
struct Connection {
    let client: ControlPlaneClient
    let isEmbedded: Bool

    /// Connects: a saved login is used as is; otherwise the embedded server is started if needed.
    static func open() async throws -> Connection {
        if let login = try LoginState.load() {
            let transport = try HTTPTransport(caCertificatePath: try login.caCertificateFile(), bearerToken: login.token)
            return Connection(client: ControlPlaneClient(server: try ServiceURL(login.serverURL), transport: transport), isEmbedded: false)
        }
        let transport = try HTTPTransport()
        try await LocalServer.ensureRunning(transport)
        return Connection(client: ControlPlaneClient(server: LocalServer.socketURL, transport: transport), isEmbedded: true)
    }

    func close() async { await client.transport.shutdown() }
}
