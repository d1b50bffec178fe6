import NIOHTTP1
public import TygerModel

/// Which buffers a list, count or bulk operation selects.
public struct BufferFilter: Sendable, Hashable {
    /// Buffers with all of these tags.
    public var tags: [String: String]
    /// Leave out buffers with any of these tags.
    public var excludeTags: [String: String]
    /// Soft-deleted buffers (`true`), active ones (`false`) or the server's default (`nil`).
    public var softDeleted: Bool?

    /// Creates a filter.
    public init(tags: [String: String] = [:], excludeTags: [String: String] = [:], softDeleted: Bool? = nil) {
        self.tags = tags
        self.excludeTags = excludeTags
        self.softDeleted = softDeleted
    }

    /// The query items: `tag[k]=v` and `excludeTag[k]=v` sorted by key, then `softDeleted`.
    var queryItems: [(String, String)] {
        var query: [(String, String)] = []
        for (k, v) in tags.sorted(by: { $0.key < $1.key }) { query.append(("tag[\(k)]", v)) }
        for (k, v) in excludeTags.sorted(by: { $0.key < $1.key }) { query.append(("excludeTag[\(k)]", v)) }
        if let softDeleted { query.append(("softDeleted", softDeleted ? "true" : "false")) }
        return query
    }
}

extension ControlPlaneClient {
    /// The query of a purge: a zero TTL on soft-deleted buffers.
    private static let purgeQuery = [("ttl", "0.00:00:00"), ("softDeleted", "true")]

    private static func path(buffer id: String) -> String { "/buffers/\(escape(id))" }

    /// `POST /buffers`: creates a buffer.
    ///
    /// - Parameter buffer: The location, tags and expiry (other fields are ignored by the server).
    /// - Returns: The new buffer.
    /// - Throws: ``TygerClientError`` for refused requests (invalid tags, unknown location) and transport failures.
    public func createBuffer(_ buffer: Buffer) async throws -> Buffer {
        try await call(Buffer.self, .POST, "/buffers", json: Self.body(buffer))
    }

    /// `GET /buffers/{id}`.
    ///
    /// - Throws: ``TygerClientError`` with status 404 for an unknown buffer.
    public func getBuffer(id: String, softDeleted: Bool = false) async throws -> Buffer {
        try await call(Buffer.self, .GET, Self.path(buffer: id), query: softDeleted ? [("softDeleted", "true")] : [])
    }

    /// `GET /buffers`: the first page of buffers, newest first.
    ///
    /// - Parameters:
    ///   - filter: Which buffers.
    ///   - limit: The page size the server should use, if not its default.
    /// - Throws: ``TygerClientError``.
    public func listBuffers(_ filter: BufferFilter, limit: Int? = nil) async throws -> Page<Buffer> {
        let query = filter.queryItems + (limit.map { [("limit", String($0))] } ?? [])
        return try await call(Page<Buffer>.self, .GET, "/buffers", query: query)
    }

    /// `PUT /buffers/{id}`: replaces the tags and (when given) the expiry.
    ///
    /// - Parameters:
    ///   - ifMatch: Update only if the buffer's ETag is this one.
    /// - Throws: ``TygerClientError`` with status 412 when `ifMatch` no longer matches.
    public func updateBuffer(
        id: String,
        _ update: BufferUpdate,
        softDeleted: Bool = false,
        ifMatch: String? = nil
    ) async throws -> Buffer {
        var headers: HTTPHeaders = [:]
        if let ifMatch { headers.add(name: "If-Match", value: ifMatch) }
        return try await call(
            Buffer.self,
            .PUT,
            Self.path(buffer: id),
            query: softDeleted ? [("softDeleted", "true")] : [],
            json: Self.body(update),
            headers: headers
        )
    }

    /// `DELETE /buffers/{id}`: soft-deletes a buffer, or with `purge` deletes a soft-deleted one for good.
    public func deleteBuffer(id: String, purge: Bool = false) async throws -> Buffer {
        try await call(Buffer.self, .DELETE, Self.path(buffer: id), query: purge ? Self.purgeQuery : [])
    }

    /// `POST /buffers/{id}/restore`: restores a soft-deleted buffer.
    public func restoreBuffer(id: String) async throws -> Buffer {
        try await call(Buffer.self, .POST, Self.path(buffer: id) + "/restore")
    }

    /// `DELETE /buffers`: soft-deletes (or with `purge` purges) every buffer `filter` selects.
    ///
    /// - Returns: How many buffers were affected.
    public func deleteBuffers(_ filter: BufferFilter, purge: Bool = false) async throws -> Int {
        var filter = filter
        filter.softDeleted = nil
        return try await call(Int.self, .DELETE, "/buffers", query: filter.queryItems + (purge ? Self.purgeQuery : []))
    }

    /// `POST /buffers/restore`: restores every soft-deleted buffer `filter` selects.
    ///
    /// - Returns: How many buffers were restored.
    public func restoreBuffers(_ filter: BufferFilter) async throws -> Int {
        var filter = filter
        filter.softDeleted = nil
        return try await call(Int.self, .POST, "/buffers/restore", query: filter.queryItems)
    }

    /// `GET /buffers/count`: how many buffers `filter` selects.
    public func countBuffers(_ filter: BufferFilter) async throws -> Int {
        try await call(Int.self, .GET, "/buffers/count", query: filter.queryItems)
    }

    /// `POST /buffers/{id}/access`: a signed access URL, and for an ephemeral buffer on this machine the local pipe.
    ///
    /// - Parameters:
    ///   - writeable: Whether the URL allows writing.
    ///   - ttl: How long the URL is valid, as a .NET TimeSpan (`d.hh:mm:ss`); the server's default when `nil`.
    public func bufferAccess(id: String, writeable: Bool, ttl: String? = nil) async throws -> BufferAccess {
        var query = [("writeable", writeable ? "true" : "false")]
        if let ttl { query.append(("ttl", ttl)) }
        return try await call(BufferAccess.self, .POST, Self.path(buffer: id) + "/access", query: query)
    }

    /// `GET /buffers/storage-accounts`.
    public func storageAccounts() async throws -> [StorageAccount] {
        try await call([StorageAccount].self, .GET, "/buffers/storage-accounts")
    }
}
