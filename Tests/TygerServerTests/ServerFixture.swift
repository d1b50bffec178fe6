import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import TygerCore
import TygerModel
import TygerServer
import TygerStorage
import TygerTestSupport

/// A movable clock for expiry tests.
final class TestClock: Sendable {
    private let seconds: Mutex<Int64>
    init(_ start: Int64 = 1_800_000_000) { seconds = Mutex(start) }
    var now: Int64 { seconds.withLock { $0 } }
    func advance(_ delta: Int64) { seconds.withLock { $0 += delta } }
    var wallClock: WallClock { WallClock { Date(timeIntervalSince1970: Double(self.now)) } }
}

/// A route collection standing in for the control plane: exercises the plug-in hook and shows the caller.
struct EchoControlPlane: ControlPlaneRoutes {
    func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication) {
        router.get("/whoami") { _, context in "\(context.caller)" }
        router.post("/buffers/{id}/access") { _, context in
            let id = try context.parameters.require("id")
            try server.buffers.create(id)
            let endpoint = server.endpoints.endpoint(for: context.transport) ?? "http://localhost"
            return try server.issuer.accessURL(containerId: id, writeable: true, endpoint: endpoint)
        }
    }
}

/// A server application over a temporary data directory, with an in-memory token store and a test clock.
struct ServerFixture: Sendable {
    let directory = TemporaryDirectory()
    let clock = TestClock()
    let tokens = InMemoryTokenStore()
    let app: TygerServerApplication

    init(maxBlobSize: Int = 64 << 20) throws {
        var configuration = TygerServerConfiguration(dataDirectory: directory.path + "/data")
        configuration.clock = clock.wallClock
        configuration.tokenStore = tokens
        configuration.maxBlobSize = maxBlobSize
        configuration.controlPlane = [EchoControlPlane()]
        configuration.accessLogLevel = .trace
        app = try TygerServerApplication(configuration: configuration)
    }

    /// The signed query for a container.
    func query(_ id: String, _ permissions: Set<SignedURLPermission>, ttl: Duration = .seconds(3600)) throws -> String {
        try app.issuer.query(containerId: id, permissions: permissions, ttl: ttl)
    }

    /// `/containers/<id>/<blob>?<signed query>`.
    func blobURI(_ id: String, _ blob: String, _ permissions: Set<SignedURLPermission>) throws -> String {
        "/containers/\(id)/\(blob)?" + (try query(id, permissions))
    }

    /// Runs `test` against the router (in process).
    func withRouter(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let application = Application(router: app.buildRouter())
        try await application.test(.router) { client in try await test(client) }
    }

    /// Stores a blob directly (as `tyger buffer write file://…` would).
    func putBlob(_ id: String, _ name: String, _ bytes: [UInt8], metadata: BlobMetadata) throws {
        let upload = try app.buffers.store(for: id).beginUpload(name)
        try bytes.withUnsafeBytes { try upload.append($0) }
        try upload.commit(metadata: metadata)
    }

    /// Creates a container directly in storage.
    func makeContainer(_ id: String) throws { try app.buffers.create(id) }
}

extension HTTPField.Name {
    static let xMsErrorCode = HTTPField.Name("x-ms-error-code")!
    static let xMsRange = HTTPField.Name("x-ms-range")!
    static let contentMD5 = HTTPField.Name("Content-MD5")!
    static let xMsBlobContentMD5 = HTTPField.Name("x-ms-blob-content-md5")!
    static let requestID = HTTPField.Name("Request-Id")!
    static func meta(_ key: String) -> HTTPField.Name { HTTPField.Name("x-ms-meta-" + key)! }
}

func md5Base64(_ bytes: [UInt8]) -> String { Checksums.md5Base64(bytes) }

/// Bytes `0, 1, 2, …` modulo 251.
func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }
