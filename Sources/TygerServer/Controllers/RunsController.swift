import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
import TygerModel
public import TygerRunEngine

/// `/runs` routes over a ``TygerRunEngine/RunEngine``: create, list, counts, get (and watch), set tags, cancel,
/// logs.
public struct RunsController: Sendable {
    let engine: RunEngine

    /// A controller over `engine`.
    ///
    /// - Parameter engine: The run engine.
    public init(engine: RunEngine) { self.engine = engine }

    /// Adds `POST /runs`, `GET /runs`, `GET /runs/counts`, `GET /runs/{id}` (`?watch=true`), `PUT /runs/{id}`,
    /// `POST /runs/{id}/cancel` and `GET /runs/{id}/logs` to `group`.
    ///
    /// - Parameter group: A group at the root of the versioned API.
    public func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("/runs") { request, _ in try await create(request) }
        group.get("/runs") { request, _ in try await list(request) }
        group.get("/runs/counts") { request, _ in try await counts(request) }
        group.get("/runs/:id") { request, context in try await get(request, context) }
        group.put("/runs/:id") { request, context in try await update(request, context) }
        group.post("/runs/:id/cancel") { _, context in try await cancel(context) }
        group.get("/runs/:id/logs") { request, context in try await logs(request, context) }
    }

    private func runId(_ context: AppRequestContext) throws -> Int64 {
        guard let id = Int64(try context.parameters.require("id")) else { throw APIError.notFound }
        return id
    }
}

extension HTTPField.Name {
    /// `Idempotency-Key`: a retried create with the same key returns the first result.
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!  // a valid token
}

extension RunsController {

    /// 201 with the created run and `Location: /runs/{id}`. A retry with the `Idempotency-Key` of an earlier
    /// create answers with that run instead of creating another.
    private func create(_ request: Request) async throws -> Response {
        let run = try await JSONBody.decode(Run.self, from: request)
        let key = request.headers[.idempotencyKey].flatMap { $0.isEmpty ? nil : $0 }
        let pull: Bool
        switch QueryParameters(request.uri.query).string("pull") {
        case nil, "false": pull = false
        case "true": pull = true
        case let other?: throw APIError.invalidInput("pull must be true or false, got '\(other)'")
        }
        let created = try await engine.createRun(run, idempotencyKey: key, pullImage: pull)
        return try JSONBody.response(
            .created,
            created,
            headers: [.location: "/runs/\(created.id ?? 0)"],
            lineTerminated: true
        )
    }

    private func list(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        var statuses: Set<RunStatus> = []
        for text in query.all("status") {
            for part in text.split(separator: ",") {
                guard let status = RunStatus(caseInsensitive: String(part)) else {
                    throw APIError(.badRequest, code: "BadRequest", message: "Invalid status: \(part)")
                }
                statuses.insert(status)
            }
        }
        let after = try query.string("_ct").map { try RunPosition(token: $0) }
        let runQuery = RunQuery(
            limit: try query.limit(),
            since: try query.date("since"),
            statuses: statuses,
            tags: query.tags("tag"),
            after: after
        )
        let (items, next) = try await engine.listRuns(runQuery)
        let nextLink = next.map { query.nextLink(path: request.uri.path, token: $0.token) }
        return try JSONBody.response(.ok, Page(items: items, nextLink: nextLink), lineTerminated: true)
    }

    /// A map of camelCase status → count, non-zero entries only.
    private func counts(_ request: Request) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        let counts = try await engine.runCounts(since: try query.date("since"), tags: query.tags("tag"))
        var map: [String: Int] = [:]
        for (status, n) in counts { map[status.countKey] = n }
        return try JSONBody.response(.ok, map, lineTerminated: true)
    }

    private func get(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try runId(context)
        guard try QueryParameters(request.uri.query).bool("watch") ?? false else {
            return try JSONBody.response(.ok, try await engine.getRun(id: id), lineTerminated: true)
        }
        let (current, changes) = try await engine.watch(id: id)
        let body = ResponseBody { writer in
            // NDJSON: one compact run per line, only when it changed, until a terminal status.
            let encoder = TygerJSON.makeEncoder()
            var last = try encoder.encode(current)
            try await writer.write(ByteBuffer(bytes: last + [0x0A]))
            if !(current.status ?? .pending).isTerminal {
                for await run in changes {
                    let line = try encoder.encode(run)
                    if line != last {
                        try await writer.write(ByteBuffer(bytes: line + [0x0A]))
                        last = line
                    }
                    if (run.status ?? .pending).isTerminal { break }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: body)
    }

    /// `PUT /runs/{id}` with upstream's `RunUpdate` (`{"id"?, "tags"?}`): replaces the tags when `If-Match` (if any)
    /// matches; 200 with the run and its new `ETag`. Upstream answers 404 and 412 with an empty body.
    private func update(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let id = try runId(context)
        let body = try await JSONBody.decode(RunUpdate.self, from: request, allowEmpty: true)
        if let bodyID = body.id, bodyID != id {
            throw APIError(
                .badRequest,
                code: "BadRequest",
                message: "The run ID in the URL does not match the run ID in the request body."
            )
        }
        let run: Run
        do {
            run = try await engine.updateRunTags(id: id, tags: body.tags, ifMatch: request.headers[.ifMatch])
        } catch let error as TygerRunEngineError where error.code == .notFound || error.code == .preconditionFailed {
            var answer = APIError(mapping: error)
            answer.hasBody = false
            throw answer
        }
        var headers = HTTPFields()
        if let eTag = run.eTag { headers[.eTag] = eTag }
        return try JSONBody.response(.ok, run, headers: headers, lineTerminated: true)
    }

    /// 202 with the run after the cancel request.
    private func cancel(_ context: AppRequestContext) async throws -> Response {
        try JSONBody.response(.accepted, try await engine.cancelRun(id: try runId(context)), lineTerminated: true)
    }

    /// `text/plain` stream of the run's log lines.
    private func logs(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let query = QueryParameters(request.uri.query)
        let tail = try query.int("tailLines")
        let options = RunLogOptions(
            timestamps: try query.bool("timestamps") ?? false,
            tailLines: tail.flatMap { $0 < 0 ? nil : $0 },
            since: try query.date("since"),
            follow: try query.bool("follow") ?? false
        )
        let sequence = try await engine.logs(id: try runId(context), options: options)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(asyncSequence: sequence)
        )
    }
}
