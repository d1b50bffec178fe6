import Foundation
import Hummingbird
import NIOCore
import TygerModel
import TygerRunEngine

/// The reports of run agents (`tyger run-agent`, started by cluster jobs): `POST /agent/runs/<id>/logs?replica=N`
/// appends log lines (`<RFC 3339 stamp> <text>\n` each) to the run's log, `POST /agent/runs/<id>/exit?replica=N`
/// (`{"code": 0, "detail": "…"}`) says how a replica ended, `POST /agent/runs/<id>/renew` gives fresh signed URLs
/// (``AgentRenewal``) to a run that outlasts them; `PUT` and `GET /agent/runs/<id>/pipes/<name>` relay the
/// process's side of an ephemeral buffer (the client's relay, ``RelayController``, has the other side).
///
/// The routes check their signed URL themselves: the engine signs it for the container name `run<id>agent` with the
/// create permission, valid until the run's deadline (``reportURL(runId:ttl:endpoint:issuer:)``).
struct AgentController: Sendable {
    let engine: RunEngine
    let validator: SignedURLValidator

    /// The path prefix of the reports, for the authentication middleware.
    static let pathPrefix = "/agent/"
    /// The largest report body (a log report carries up to 1 MiB of lines, or one longer line).
    static let maxBody = 16 << 20

    /// The signed base URL of a run's reports.
    static func reportURL(runId: Int64, ttl: Duration, endpoint: String, issuer: SignedURLIssuer) throws -> String {
        let query = try issuer.query(containerId: signedName(runId), permissions: [.createBlob], ttl: ttl)
        return "\(endpoint)\(pathPrefix)runs/\(runId)?\(query)"
    }

    static func signedName(_ runId: Int64) -> String { "run\(runId)agent" }

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/agent/runs/:id/logs") { request, context in try await logs(request, context) }
        router.post("/agent/runs/:id/exit") { request, context in try await exit(request, context) }
        router.post("/agent/runs/:id/renew") { request, context in try await renew(request, context) }
        router.put("/agent/runs/:id/pipes/:name") { request, context in try await putPipe(request, context) }
        router.get("/agent/runs/:id/pipes/:name") { request, context in try await getPipe(request, context) }
    }

    /// Checks the signature (`acceptingExpired`: a genuine one past its expiry too); the run.
    private func signedRun(
        _ request: Request,
        _ context: AppRequestContext,
        acceptingExpired: Bool = false
    ) throws -> Int64 {
        guard let runId = Int64(try context.parameters.require("id")), runId > 0 else { throw APIError.notFound }
        _ = try validator.validate(
            query: try QueryParameters(request.uri.query).signedURLParameters(),
            containerId: Self.signedName(runId),
            required: .createBlob,
            acceptingExpired: acceptingExpired
        )
        context.caller = .signedURL(containerId: Self.signedName(runId))
        return runId
    }

    /// Checks the signature; the run, the replica and the receiver.
    private func target(
        _ request: Request,
        _ context: AppRequestContext
    ) throws -> (runId: Int64, replica: Int, worker: Bool, receiver: any RunAgentReceiver) {
        let runId = try signedRun(request, context)
        let query = QueryParameters(request.uri.query)
        // `replica=N`: the job's replica N; `worker=N`: the workers' replica N.
        let worker = query.string("worker") != nil
        guard let text = query.string(worker ? "worker" : "replica"), let replica = Int(text), replica >= 0 else {
            throw APIError.invalidInput("replica (or worker) must be a non-negative integer")
        }
        guard let receiver = engine.agentReceiver else { throw APIError.notFound }
        return (runId, replica, worker, receiver)
    }

    private func logs(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let target = try target(request, context)
        let body = try await request.body.collect(upTo: Self.maxBody)
        do {
            try target.receiver.agentLogs(
                runId: target.runId,
                replica: target.replica,
                worker: target.worker,
                lines: Array(buffer: body)
            )
        } catch let error as TygerRunEngineError where error.code == .notFound {
            throw APIError.notFound
        }
        return Response(status: .noContent)
    }

    private func exit(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let target = try target(request, context)
        let body = try await request.body.collect(upTo: 64 << 10)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let code = (object["code"] as? NSNumber)?.int64Value, let code32 = Int32(exactly: code)
        else {
            throw APIError.invalidInput("the exit report must be a JSON object with an integer 'code'")
        }
        let detail = object["detail"] as? String
        do {
            try target.receiver.agentExited(
                runId: target.runId,
                replica: target.replica,
                worker: target.worker,
                exit: ReplicaExit(code: code32, detail: detail.map { String($0.prefix(4096)) })
            )
        } catch let error as TygerRunEngineError where error.code == .notFound {
            throw APIError.notFound
        }
        return Response(status: .noContent)
    }

    /// Fresh signed URLs for the run's agent, asked with the report URL it holds: a run may outlast them. An expired
    /// but genuine URL is taken while the run is live (a job may wait in Slurm's queue longer than its URLs last);
    /// only the job's replica 0 (`replica=0`), the one with the buffers, gets the buffers' URLs.
    private func renew(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let runId = try signedRun(request, context, acceptingExpired: true)
        let query = QueryParameters(request.uri.query)
        let withBuffers = query.string("worker") == nil && query.string("replica") == "0"
        let renewal: AgentRenewal
        do {
            renewal = try await engine.agentRenewal(runId: runId, withBuffers: withBuffers)
        } catch let error as TygerRunEngineError where error.code == .notFound {
            throw APIError.notFound
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(renewal)))
        )
    }

    /// An ephemeral output of the run: the agent's body (what the remote process wrote) into the process's side of
    /// the buffer's FIFO here, which the client's relay reads.
    private func putPipe(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let runId = try signedRun(request, context)
        let name = try context.parameters.require("name")
        try await engine.withAgentOutputPipe(runId: runId, parameter: name) { writer in
            for try await chunk in request.body { try await writer.write(chunk) }
        }
        return Response(status: .accepted)
    }

    /// An ephemeral input of the run: the process's side of the buffer's FIFO here (what the client's relay writes),
    /// streamed to the agent.
    private func getPipe(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let runId = try signedRun(request, context)
        let name = try context.parameters.require("name")
        let engine = engine
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream"],
            body: RelayController.streamingBody { push in
                try await engine.withAgentInputPipe(runId: runId, parameter: name) {
                    for try await chunk in $0 { try await push(chunk) }
                }
            }
        )
    }
}
