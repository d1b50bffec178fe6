import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TygerModel

/// `GET /healthcheck`, `GET /metadata` and `GET /swagger/v1.0/swagger.yaml`: anonymous, version-neutral.
struct SystemController: Sendable {
    let endpoints: ListenerEndpoints
    let controlPlane: [any ControlPlaneRoutes]
    /// Data planes in processes of their own: `/metadata` says whether each answers its health check.
    var dataPlanes: [RemoteDataPlane] = []

    /// Where the OpenAPI document is served (upstream's path).
    static let openAPIDocumentPath = "/swagger/v1.0/swagger.yaml"

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/healthcheck") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "Healthy"))
            )
        }
        router.get(RouterPath(Self.openAPIDocumentPath)) { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml))
            )
        }
        router.get("/metadata") { _, context in
            let endpoint = endpoints.endpoint(for: context.transport) ?? ""
            var metadata = ServiceMetadata(
                capabilities: ["LocalBuffers"],
                storageEndpoints: endpoints.all,
                dataPlaneEndpoint: endpoint,
                controlPlaneEndpoint: endpoint
            )
            for routes in controlPlane { routes.describe(into: &metadata) }
            if !dataPlanes.isEmpty {
                // Checked together, each within RemoteDataPlane.healthTimeout.
                metadata.dataPlanes = await withTaskGroup(of: (Int, Bool).self) { group in
                    for (index, plane) in dataPlanes.enumerated() {
                        group.addTask { (index, await plane.isHealthy()) }
                    }
                    var healthy = [Bool](repeating: false, count: dataPlanes.count)
                    for await (index, answer) in group { healthy[index] = answer }
                    return zip(dataPlanes, healthy).map {
                        DataPlaneMetadata(name: $0.name, endpoint: $0.url, healthy: $1)
                    }
                }
            }
            let order = ServiceMetadata.capabilityOrder
            metadata.capabilities = Array(Set(metadata.capabilities ?? [])).sorted {
                (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1)
            }
            return try JSONBody.response(.ok, metadata)
        }
    }
}
