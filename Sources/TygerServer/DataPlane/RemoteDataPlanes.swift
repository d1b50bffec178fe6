import NIOCore
import NIOHTTP1
public import TygerClient
import TygerControlPlane
import TygerModel
import TygerStorage

/// A data plane in a process of its own (`tyger-server data-plane`), named by `tyger-server run --data-plane
/// NAME=URL`: buffers whose location is its name are created, checked and deleted through its container routes with
/// URLs this server signs, and their access URLs lead there.
public struct RemoteDataPlane: Sendable {
    /// The name buffers give as their location.
    public let name: String
    /// Its base URL, without a trailing slash.
    public let url: String
    let transport: HTTPTransport

    /// - Throws: `TygerServerError` `.invalidConfiguration` for a name that is not 1-63 letters, digits and
    ///   hyphens, or a URL that is not `http(s)://HOST[:PORT]` or `http+unix://…`.
    public init(name: String, url: String, transport: HTTPTransport) throws {
        guard (1...63).contains(name.count),
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else {
            throw TygerServerError(
                .invalidConfiguration,
                "invalid data plane name '\(name)': use 1 to 63 letters, digits and hyphens"
            )
        }
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        guard (try? ServiceURL(base)) != nil,
            ["http://", "https://", "http+unix://"].contains(where: { base.hasPrefix($0) })
        else {
            throw TygerServerError(
                .invalidConfiguration,
                "invalid URL '\(url)' of data plane '\(name)': expected http://HOST:PORT or https://HOST:PORT"
            )
        }
        self.name = name
        self.url = base
        self.transport = transport
    }

    /// Splits `NAME=URL`.
    public static func parse(_ text: String) -> (name: String, url: String)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// One request to the container of `id`, signed for `permission`; the answer's status.
    func container(
        _ method: HTTPMethod,
        id: String,
        permission: SignedURLPermission,
        issuer: SignedURLIssuer
    ) async throws -> Int {
        let signed = try issuer.url(
            containerId: id,
            permissions: [permission],
            ttl: SignedURLIssuer.minimumTTL,
            endpoint: url
        )
        do {
            return try await transport.send(method, try ServiceURL(signed), timeout: .seconds(30)).status
        } catch let error as TygerClientError where error.code == .transport {
            throw TygerControlPlaneError(
                code: .unavailable,
                message: "The data plane '\(name)' cannot be reached; try again later.",
                cause: error
            )
        }
    }

    /// How long a health check waits for the data plane's answer.
    static let healthTimeout: TimeAmount = .seconds(3)

    /// Whether the data plane answers `GET /healthcheck` with 200 within ``healthTimeout``.
    func isHealthy() async -> Bool {
        guard let target = try? ServiceURL(url + "/healthcheck") else { return false }
        return (try? await transport.send(.GET, target, timeout: Self.healthTimeout).status) == 200
    }

    /// The blobs of buffer `id` on this data plane, through URLs this server signs (renewed when refused).
    func store(for id: String, issuer: SignedURLIssuer) throws -> HTTPBlobStore {
        let url = url
        let sign: @Sendable () throws -> ServiceURL = {
            try ServiceURL(
                issuer.accessURL(containerId: id, writeable: true, ttl: SignedURLIssuer.maximumTTL, endpoint: url)
            )
        }
        return HTTPBlobStore(containerURL: try sign(), transport: transport, refreshURL: sign)
    }
}

/// The storage of a control plane with data planes in other processes: buffers at one of their locations go to that
/// data plane, the rest to the server's own storage (its data directory or its S3 store).
struct DataPlaneRoutingStorage: BufferStorageProvider {
    let own: any BufferStorageProvider
    let planes: [RemoteDataPlane]
    let issuer: SignedURLIssuer

    private func plane(_ location: String) -> RemoteDataPlane? { planes.named(location) }

    private func failure(_ what: String, _ plane: RemoteDataPlane, status: Int) -> TygerServerError {
        TygerServerError(.io, "\(what) on data plane '\(plane.name)' (\(plane.url)): it answered \(status)")
    }

    func createContainer(id: String, location: String) async throws {
        guard let plane = plane(location) else { return try await own.createContainer(id: id, location: location) }
        let status = try await plane.container(.PUT, id: id, permission: .createContainer, issuer: issuer)
        guard status == 201 else { throw failure("cannot create buffer \(id)", plane, status: status) }
    }

    /// Deletes the container where the buffer's location says it is: a data plane that is down holds up only the
    /// purges of its own buffers.
    func deleteContainer(id: String, location: String) async throws {
        guard let plane = plane(location) else { return try await own.deleteContainer(id: id, location: location) }
        let status = try await plane.container(.DELETE, id: id, permission: .deleteContainer, issuer: issuer)
        guard status == 202 || status == 404 else { throw failure("cannot delete buffer \(id)", plane, status: status) }
    }

    func containerExists(id: String, location: String) async throws -> Bool {
        guard let plane = plane(location) else { return try await own.containerExists(id: id, location: location) }
        let status = try await plane.container(.HEAD, id: id, permission: .readContainer, issuer: issuer)
        guard status == 200 || status == 404 else {
            throw failure("cannot look for buffer \(id)", plane, status: status)
        }
        return status == 200
    }

    func accessURL(
        id: String,
        location: String,
        writeable: Bool,
        ttl: Duration,
        preferTCP: Bool
    ) async throws
        -> String
    {
        guard let plane = plane(location) else {
            return try await own.accessURL(
                id: id,
                location: location,
                writeable: writeable,
                ttl: ttl,
                preferTCP: preferTCP
            )
        }
        return try issuer.accessURL(containerId: id, writeable: writeable, ttl: ttl, endpoint: plane.url)
    }

    func storageAccounts() async throws -> [StorageAccount] {
        try await own.storageAccounts()
            + planes.map { StorageAccount(name: $0.name, location: $0.name, endpoint: $0.url + "/") }
    }
}

extension [RemoteDataPlane] {
    /// The data plane a buffer location names (names are compared without case), if any.
    func named(_ location: String) -> RemoteDataPlane? {
        first { $0.name.lowercased() == location.lowercased() }
    }
}
