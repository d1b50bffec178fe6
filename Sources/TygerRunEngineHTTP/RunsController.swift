import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore
public import TygerRunEngine
import TygerModel

/// `/runs` routes: create, list, counts, get (and watch), cancel, logs.
public struct RunsController<Context: RequestContext>: Sendable {
    let engine: RunEngine

    /// A controller over `engine`.
    public init(engine: RunEngine) { self.engine = engine }

    /// Adds `POST /runs`, `GET /runs`, `GET /runs/counts`, `GET /runs/{id}` (`?watch=true`),
    /// `POST /runs/{id}/cancel` and `GET /runs/{id}/logs` to `group`.
    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("/runs", use: create)
        group.get("/runs", use: list)
        group.get("/runs/counts", use: counts)
        group.get("/runs/:id", use: get)
        group.post("/runs/:id/cancel", use: cancel)
        group.get("/runs/:id/logs", use: logs)
    }

    private func runId(_ context: Context) throws -> Int64 {
        guard let id = Int64(try context.parameters.require("id")) else {
            throw TygerRunEngineError(.notFound, "The resource was not found")
        }
        return id
    }

    /// 201 with the created run and `Location: /runs/{id}`.
    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let run = try await decodeBody(Run.self, from: request, context: context)
            let created = try await engine.createRun(run)
            return try jsonResponse(created, status: .created, location: "/runs/\(created.id ?? 0)")
        }
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let query = Query(request: request)
            var statuses: Set<RunStatus> = []
            for text in query.all("status") {
                for part in text.split(separator: ",") {
                    guard let status = RunStatus(caseInsensitive: String(part)) else {
                        throw RunAPIError.badRequest("Invalid status: \(part)")
                    }
                    statuses.insert(status)
                }
            }
            let after = try query.string("_ct").map { try RunPosition(token: $0) }
            let runQuery = RunQuery(
                limit: try query.limit(), since: try query.date("since"), statuses: statuses, tags: query.tags(), after: after)
            let (items, next) = try await engine.listRuns(runQuery)
            return try jsonResponse(Page(items: items, nextLink: next.map { query.nextLink(token: $0.token) }))
        }
    }

    /// A map of camelCase status → count, non-zero entries only.
    @Sendable func counts(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let query = Query(request: request)
            let counts = try await engine.runCounts(since: try query.date("since"), tags: query.tags())
            var map: [String: Int] = [:]
            for (status, n) in counts { map[status.countKey] = n }
            return try jsonResponse(map)
        }
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let id = try runId(context)
            guard try Query(request: request).bool("watch") else { return try jsonResponse(try await engine.getRun(id: id)) }
            let (current, changes) = try await engine.watch(id: id)
            let body = ResponseBody { writer in
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
    }

    /// 202 with the run after the cancel request.
    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            try jsonResponse(try await engine.cancelRun(id: try runId(context)), status: .accepted)
        }
    }

    /// `text/plain` stream of the run's log lines.
    @Sendable func logs(_ request: Request, context: Context) async throws -> Response {
        try await mapErrors {
            let query = Query(request: request)
            var tail: Int?
            if let text = query.string("tailLines"), !text.isEmpty {
                guard let n = Int(text) else { throw RunAPIError.badRequest("tailLines must be an integer") }
                tail = n < 0 ? nil : n
            }
            let options = RunLogOptions(
                timestamps: try query.bool("timestamps"), tailLines: tail, since: try query.date("since"),
                follow: try query.bool("follow"))
            let sequence = try await engine.logs(id: try runId(context), options: options)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(asyncSequence: sequence))
        }
    }
}
