import Foundation
import HTTPTypes
public import Hummingbird
public import TygerControlPlane
import TygerModel

/// The `/buffers` routes of the control-plane REST API, over a ``TygerControlPlane/BufferManager``.
///
/// Mount it on a group at `/buffers` that carries ``APIVersionMiddleware``:
/// ```swift
/// let manager = BufferManager(repository: try SQLiteBufferRepository(directory: dataDir), storage: provider)
/// BuffersController(manager: manager)
///     .addRoutes(to: router.group("buffers").add(middleware: APIVersionMiddleware()))
/// ```
/// Routes (relative to the group): `POST /`, `GET /`, `DELETE /`, `POST /restore`, `GET /count`,
/// `GET /storage-accounts`, `GET|PUT|DELETE /{id}`, `POST /{id}/restore`, `POST /{id}/access`.
/// `POST /{id}/access` also answers for ephemeral buffers (`run-<id>-temp-<x>`) through the manager's
/// ``TygerControlPlane/EphemeralBufferProvider``.
public struct BuffersController: Sendable {
    /// The manager that implements the operations.
    public let manager: BufferManager

    /// Creates the controller.
    ///
    /// - Parameter manager: The manager that implements the operations.
    public init(manager: BufferManager) {
        self.manager = manager
    }

    /// Adds the buffer routes to a group whose path is the buffers collection (`/buffers`).
    ///
    /// - Parameter group: The group to add the routes to.
    public func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post { request, _ in try await self.create(request) }
        group.get { request, _ in try await self.list(request) }
        group.delete { request, _ in try await self.deleteMany(request) }
        group.post("restore") { request, _ in try await self.restoreMany(request) }
        group.get("count") { request, _ in try await self.count(request) }
        group.get("storage-accounts") { _, _ in try JSONBody.response(.ok, try await self.manager.storageAccounts()) }
        group.get(":id") { request, context in try await self.get(request, context) }
        group.put(":id") { request, context in try await self.update(request, context) }
        group.delete(":id") { request, context in try await self.delete(request, context) }
        group.post(":id/restore") { request, context in try await self.restore(request, context) }
        group.post(":id/access") { request, context in try await self.access(request, context) }
    }

    // MARK: - Collection routes

    private func create(_ request: Request) async throws -> Response {
        // `{}` creates a buffer with no tags or expiry (upstream rejects it; a buffer with no properties is valid).
        let body = try await JSONBody.decode(Buffer.self, from: request, allowEmptyObject: true)
        let record = try await manager.create(body)
        let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        return try JSONBody.response(
            .created,
            record.wire,
            headers: [.location: "\(path)/\(record.id)", .eTag: record.eTag]
        )
    }

    private func list(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        var filter = Self.filter(query)
        filter.softDeleted = try query.bool("softDeleted") ?? false
        let limit = try query.limit()
        let (records, token) = try await manager.list(filter, limit: limit, continuationToken: query.string("_ct"))
        let nextLink = token.map { query.nextLink(path: request.uri.path, token: $0) }
        return try JSONBody.response(.ok, Page<Buffer>(items: records.map(\.wire), nextLink: nextLink))
    }

    private func deleteMany(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        let ttl = try Self.ttl(query)
        let purge = try query.bool("softDeleted") ?? false
        let count = try await manager.softDelete(matching: Self.filter(query), ttl: ttl, purge: purge)
        return try JSONBody.response(.ok, count)
    }

    private func restoreMany(_ request: Request) async throws -> Response {
        let count = try await manager.restore(matching: Self.filter(QueryParameters(request.uri.query)))
        return try JSONBody.response(.ok, count)
    }

    private func count(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        var filter = Self.filter(query)
        filter.softDeleted = try query.bool("softDeleted")
        return try JSONBody.response(.ok, try await manager.count(filter))
    }

    // MARK: - Item routes

    private func get(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let softDeleted = try QueryParameters(request.uri.query).bool("softDeleted") ?? false
        let record = try await manager.get(id: id, softDeleted: softDeleted)
        return try JSONBody.response(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func update(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let softDeleted = try QueryParameters(request.uri.query).bool("softDeleted") ?? false
        let body = try await JSONBody.decode(BufferUpdate.self, from: request, allowEmpty: true)
        let record = try await manager.update(
            id: id,
            body,
            ifMatch: request.headers[.ifMatch],
            softDeleted: softDeleted
        )
        return try JSONBody.response(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func delete(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let query = QueryParameters(request.uri.query)
        let ttl = try Self.ttl(query)
        let purge = try query.bool("softDeleted") ?? false
        let record = try await manager.softDelete(id: id, ttl: ttl, purge: purge)
        return try JSONBody.response(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func restore(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let record = try await manager.restore(id: id)
        return try JSONBody.response(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func access(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let query = QueryParameters(request.uri.query)
        let writeable = try query.bool("writeable") ?? false
        let preferTCP = try query.bool("preferTcp") ?? false
        _ = try query.bool("fromDocker")  // validated; there are no containers to reach the server from
        let ttl = try Self.ttl(query)
        let access = try await CurrentRequest.$transport.withValue(context.transport) {
            try await manager.access(id: id, writeable: writeable, preferTCP: preferTCP, ttl: ttl)
        }
        return try JSONBody.response(.created, access)
    }

    // MARK: - Parameters

    static func filter(_ query: QueryParameters) -> BufferFilter {
        BufferFilter(tags: query.tags("tag"), excludeTags: query.tags("excludeTag"), softDeleted: nil)
    }

    static func ttl(_ query: QueryParameters) throws(APIError) -> Duration? {
        guard let raw = query.string("ttl") else { return nil }
        guard let ttl = TimeSpan.parse(raw) else { throw .invalidInput("ttl must be a valid, non-negative TimeSpan") }
        return ttl
    }
}
