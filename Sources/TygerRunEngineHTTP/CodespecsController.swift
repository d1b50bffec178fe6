public import Hummingbird
import HTTPTypes
public import TygerRunEngine
import TygerModel

/// `/codespecs` routes: create a version, get the latest or a version, list.
public struct CodespecsController<Context: RequestContext>: Sendable {
    let engine: RunEngine

    /// A controller over `engine`.
    public init(engine: RunEngine) { self.engine = engine }

    /// Adds `PUT /codespecs/{name}`, `GET /codespecs/{name}`, `GET /codespecs/{name}/versions/{version}` and
    /// `GET /codespecs` to `group`.
    public func addRoutes(to group: RouterGroup<Context>) {
        group.put("/codespecs/:name", use: put)
        group.get("/codespecs/:name", use: get)
        group.get("/codespecs/:name/versions/:version", use: getVersion)
        group.get("/codespecs", use: list)
    }

    /// 201 when the result is version 1, else 200; `Location: /codespecs/{name}/versions/{version}`.
    @Sendable func put(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let name = try context.parameters.require("name")
            let spec = try await decodeBody(Codespec.self, from: request, context: context)
            let stored = try await engine.upsertCodespec(name: name, spec)
            let version = stored.version ?? 1
            return try jsonResponse(
                stored, status: version == 1 ? .created : .ok, location: "/codespecs/\(name)/versions/\(version)")
        }
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let name = try context.parameters.require("name")
            let spec = try await engine.codespec(name: name)
            return try jsonResponse(spec, location: "/codespecs/\(name)/versions/\(spec.version ?? 1)")
        }
    }

    @Sendable func getVersion(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let name = try context.parameters.require("name")
            guard let version = Int(try context.parameters.require("version")) else {
                throw TygerRunEngineError(.notFound, "The resource was not found")
            }
            return try jsonResponse(try await engine.codespec(name: name, version: version))
        }
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let query = Query(request: request)
            let limit = try query.limit()
            let after = try query.string("_ct").map { try CodespecContinuation.name(fromToken: $0) }
            let (items, next) = try await engine.listCodespecs(prefix: query.string("prefix"), limit: limit, after: after)
            return try jsonResponse(
                Page(items: items, nextLink: next.map { query.nextLink(token: CodespecContinuation.token(after: $0)) }))
        }
    }
}
