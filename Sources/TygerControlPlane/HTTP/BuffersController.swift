public import Hummingbird
import Foundation
import NIOCore
import TygerModel

/// The `/buffers` routes of the control-plane REST API.
///
/// Mount it on a group at `/buffers` that carries ``APIVersionMiddleware``:
/// ```swift
/// let manager = BufferManager(repository: try SQLiteBufferRepository(directory: dataDir), storage: provider)
/// BuffersController(manager: manager)
///     .addRoutes(to: router.group("buffers").add(middleware: APIVersionMiddleware()))
/// ```
/// Routes (relative to the group): `POST /`, `GET /`, `DELETE /`, `POST /restore`, `GET /count`,
/// `GET /storage-accounts`, `GET|PUT|DELETE /{id}`, `POST /{id}/restore`, `POST /{id}/access`.
/// Errors are thrown as ``TygerControlPlaneError``, which renders the JSON error envelope itself.
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
    /// - Parameter group: The group to add the routes to; generic over the server's request context.
    public func addRoutes<Context: RequestContext>(to group: RouterGroup<Context>) {
        group.post { request, context in try await self.create(request, context) }
        group.get { request, _ in try await self.list(request) }
        group.delete { request, _ in try await self.deleteMany(request) }
        group.post("restore") { request, _ in try await self.restoreMany(request) }
        group.get("count") { request, _ in try await self.count(request) }
        group.get("storage-accounts") { _, _ in
            try JSONResponse.make(.ok, try await self.manager.storageAccounts())
        }
        group.get(":id") { request, context in try await self.get(request, context) }
        group.put(":id") { request, context in try await self.update(request, context) }
        group.delete(":id") { request, context in try await self.delete(request, context) }
        group.post(":id/restore") { request, context in try await self.restore(request, context) }
        group.post(":id/access") { request, context in try await self.access(request, context) }
    }

    // MARK: - Collection routes

    private func create(_ request: Request, _ context: some RequestContext) async throws -> Response {
        // `{}` creates a buffer with no tags or expiry (upstream rejects it; a buffer with no properties is valid).
        let body = try await Self.decodeBody(Buffer.self, request, context, allowEmpty: false, allowEmptyObject: true)
        let record = try await manager.create(body)
        let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        return try JSONResponse.make(
            .created, record.wire, headers: [.location: "\(path)/\(record.id)", .eTag: record.eTag])
    }

    private func list(_ request: Request) async throws -> Response {
        let query = QueryString(request.uri.query)
        var filter = try Self.filter(query)
        filter.softDeleted = try query.bool("softDeleted") ?? false
        let limit = try Self.limit(query)
        let (records, token) = try await manager.list(filter, limit: limit, continuationToken: query.last("_ct"))
        let nextLink = token.map { "\(request.uri.path)?\(query.replacing("_ct", with: $0))" }
        return try JSONResponse.make(.ok, Page<Buffer>(items: records.map(\.wire), nextLink: nextLink))
    }

    private func deleteMany(_ request: Request) async throws -> Response {
        let query = QueryString(request.uri.query)
        let ttl = try Self.ttl(query)
        let purge = try query.bool("softDeleted") ?? false
        let count = try await manager.softDelete(matching: try Self.filter(query), ttl: ttl, purge: purge)
        return try JSONResponse.make(.ok, count)
    }

    private func restoreMany(_ request: Request) async throws -> Response {
        let count = try await manager.restore(matching: try Self.filter(QueryString(request.uri.query)))
        return try JSONResponse.make(.ok, count)
    }

    private func count(_ request: Request) async throws -> Response {
        let query = QueryString(request.uri.query)
        var filter = try Self.filter(query)
        filter.softDeleted = try query.bool("softDeleted")
        return try JSONResponse.make(.ok, try await manager.count(filter))
    }

    // MARK: - Item routes

    private func get(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let softDeleted = try QueryString(request.uri.query).bool("softDeleted") ?? false
        let record = try await manager.get(id: id, softDeleted: softDeleted)
        return try JSONResponse.make(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func update(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let softDeleted = try QueryString(request.uri.query).bool("softDeleted") ?? false
        let body = try await Self.decodeBody(BufferUpdate.self, request, context, allowEmpty: true)
        let record = try await manager.update(
            id: id, body, ifMatch: request.headers[.ifMatch], softDeleted: softDeleted)
        return try JSONResponse.make(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func delete(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let query = QueryString(request.uri.query)
        let ttl = try Self.ttl(query)
        let purge = try query.bool("softDeleted") ?? false
        let record = try await manager.softDelete(id: id, ttl: ttl, purge: purge)
        return try JSONResponse.make(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func restore(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let record = try await manager.restore(id: id)
        return try JSONResponse.make(.ok, record.wire, headers: [.eTag: record.eTag])
    }

    private func access(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let query = QueryString(request.uri.query)
        let writeable = try query.bool("writeable") ?? false
        let preferTCP = try query.bool("preferTcp") ?? false
        _ = try query.bool("fromDocker")  // validated; only relevant to ephemeral buffers (not handled here)
        let access = try await manager.access(id: id, writeable: writeable, preferTCP: preferTCP, ttl: Self.ttl(query))
        return try JSONResponse.make(.created, access)
    }

    // MARK: - Parameter parsing

    static func filter(_ query: QueryString) throws(TygerControlPlaneError) -> BufferFilter {
        BufferFilter(tags: query.tags("tag"), excludeTags: query.tags("excludeTag"), softDeleted: nil)
    }

    static func limit(_ query: QueryString) throws(TygerControlPlaneError) -> Int? {
        guard let raw = query.last("limit") else { return nil }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw .invalidInput("Limit must be a non-negative integer.")
        }
        return value
    }

    static func ttl(_ query: QueryString) throws(TygerControlPlaneError) -> Duration? {
        guard let raw = query.last("ttl") else { return nil }
        guard let ttl = TimeSpan.parse(raw) else { throw .invalidInput("ttl must be a valid, non-negative TimeSpan") }
        return ttl
    }

    static func decodeBody<T: Decodable>(
        _ type: T.Type, _ request: Request, _ context: some RequestContext, allowEmpty: Bool,
        allowEmptyObject: Bool = false
    ) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        do {
            return try TygerJSON.decodeBody(
                type, from: Data(buffer.readableBytesView), allowEmpty: allowEmpty, allowEmptyObject: allowEmptyObject)
        } catch {
            throw TygerControlPlaneError(code: .invalidInput, message: error.message, cause: error)
        }
    }
}
