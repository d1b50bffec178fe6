import HTTPTypes
public import Hummingbird
import TygerModel
public import TygerRunEngine

/// `/codespecs` routes over a ``TygerRunEngine/RunEngine``: create a version, get the latest or a version, list.
public struct CodespecsController: Sendable {
    let engine: RunEngine

    /// A controller over `engine`.
    ///
    /// - Parameter engine: The run engine that stores the codespecs.
    public init(engine: RunEngine) { self.engine = engine }

    /// Adds `PUT /codespecs/{name}`, `GET /codespecs/{name}`, `GET /codespecs/{name}/versions/{version}` and
    /// `GET /codespecs` to `group`.
    ///
    /// - Parameter group: A group at the root of the versioned API.
    public func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.put("/codespecs/:name") { request, context in try await put(request, context) }
        group.get("/codespecs/:name") { _, context in try await get(context) }
        group.get("/codespecs/:name/versions/:version") { _, context in try await getVersion(context) }
        group.get("/codespecs") { request, _ in try await list(request) }
    }

    /// 201 when the result is version 1, else 200; `Location: /codespecs/{name}/versions/{version}`.
    private func put(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let spec = try await JSONBody.decode(Codespec.self, from: request)
        let stored = try await engine.upsertCodespec(name: name, spec)
        let version = stored.version ?? 1
        return try JSONBody.response(
            version == 1 ? .created : .ok,
            stored,
            headers: [.location: "/codespecs/\(name)/versions/\(version)"],
            lineTerminated: true
        )
    }

    private func get(_ context: AppRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let spec = try await engine.codespec(name: name)
        return try JSONBody.response(
            .ok,
            spec,
            headers: [.location: "/codespecs/\(name)/versions/\(spec.version ?? 1)"],
            lineTerminated: true
        )
    }

    private func getVersion(_ context: AppRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        guard let version = Int(try context.parameters.require("version")) else { throw APIError.notFound }
        return try JSONBody.response(.ok, try await engine.codespec(name: name, version: version), lineTerminated: true)
    }

    private func list(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        let after = try query.string("_ct").map { try CodespecContinuation.name(fromToken: $0) }
        let (items, next) = try await engine.listCodespecs(
            prefix: query.string("prefix"),
            limit: try query.limit(),
            after: after
        )
        let nextLink = next.map {
            query.nextLink(path: request.uri.path, token: CodespecContinuation.token(after: $0))
        }
        return try JSONBody.response(.ok, Page(items: items, nextLink: nextLink), lineTerminated: true)
    }
}
