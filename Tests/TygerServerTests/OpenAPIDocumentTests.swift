import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import TygerServer

/// `GET /swagger/v1.0/swagger.yaml` serves `docs/openapi.yaml`, embedded by `tools/embed-openapi`.
struct OpenAPIDocumentTests {
    /// `docs/openapi.yaml` of this checkout.
    static func documentInRepository() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
    }

    @Test func servesTheDocumentAnonymouslyAndUpToDate() async throws {
        let expected = try Self.documentInRepository()
        let fixture = try ServerFixture()
        try await fixture.withRouter { client in
            // No token, no api-version: like /metadata. An api-version is ignored.
            for uri in ["/swagger/v1.0/swagger.yaml", "/swagger/v1.0/swagger.yaml?api-version=2.0"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType]?.hasPrefix("application/yaml") == true)
                    let served = String(buffer: response.body)
                    #expect(served.hasPrefix("openapi: "))
                    // Fails when docs/openapi.yaml changed without `tools/embed-openapi`.
                    #expect(served == expected, "the embedded OpenAPI document is stale: run tools/embed-openapi")
                }
            }
        }
    }
}
