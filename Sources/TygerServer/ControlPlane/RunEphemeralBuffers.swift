import TygerControlPlane
import TygerModel
import TygerRunEngine

/// The run engine's ephemeral buffers as the buffer manager sees them (``TygerControlPlane/EphemeralBufferProvider``):
/// `POST /buffers/run-<id>-temp-<x>/access` answers with a relay URL (``RelayController``) signed for `<x>`.
///
/// A caller on the server's unix socket is on this machine: it also gets `localPath`, the run's named pipe, to open
/// directly instead of going through the relay. The answer waits until the run has made its pipes (at most
/// ``pipeWait``); when the run finishes first there is no `localPath`.
struct RunEphemeralBuffers: EphemeralBufferProvider {
    let engine: RunEngine
    let server: TygerServerApplication
    /// How long an access request waits for the run's pipe.
    var pipeWait: Duration = .seconds(30)

    func access(_ id: EphemeralBufferID, writeable: Bool, preferTCP: Bool, ttl: Duration) async throws -> BufferAccess {
        let target: (runId: Int64, parameter: String, isInput: Bool)
        do {
            target = try await engine.ephemeralTarget(bufferId: id.description)
        } catch let error as TygerRunEngineError where error.code == .notFound {
            throw TygerControlPlaneError(code: .notFound, message: "The resource was not found", cause: error)
        }
        let transport = CurrentRequest.transport
        // A run another server supervises (sharing the database) is relayed there, with a URL signed by the key the
        // servers share.
        if let owner = try await engine.ownerEndpoint(ofRun: target.runId) {
            let query = try server.issuer.query(
                containerId: id.suffix,
                permissions: writeable ? [.createBlob, .readBlob] : [.readBlob],
                ttl: ttl
            )
            return BufferAccess(uri: "\(owner)\(RelayController.pathPrefix)\(id)?\(query)&relay=true")
        }
        guard let endpoint = server.endpoints.endpoint(for: preferTCP ? .tcp : transport) else {
            throw TygerControlPlaneError(code: .badRequest, message: "There is no listener to issue relay URLs for.")
        }
        let query = try server.issuer.query(
            containerId: id.suffix,
            permissions: writeable ? [.createBlob, .readBlob] : [.readBlob],
            ttl: ttl
        )
        var access = BufferAccess(uri: "\(endpoint)\(RelayController.pathPrefix)\(id)?\(query)&relay=true")
        if transport == .unixSocket {
            access.localPath = try await engine.ephemeralPipePath(
                runId: target.runId,
                parameter: target.parameter,
                timeout: pipeWait
            )
        }
        return access
    }
}
