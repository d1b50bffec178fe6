import HTTPTypes
import Hummingbird
import NIOCore
import TygerCore
import TygerModel
import TygerRunEngine

/// The relay of ephemeral buffers (`_` arguments of a run): `PUT /relay/<id>` streams a body into the run's input
/// pipe, `GET /relay/<id>` streams its output pipe; nothing is stored.
///
/// The routes check their signed URL themselves, like the data plane: URLs are signed for the ID's suffix `<x>` of
/// `run-<runId>-temp-<x>`, as upstream (``RunEphemeralBuffers`` issues them).
struct RelayController: Sendable {
    let engine: RunEngine
    let validator: SignedURLValidator

    /// The path prefix of the relay, for the authentication middleware.
    static let pathPrefix = "/relay/"

    func addRoutes(to router: Router<AppRequestContext>) {
        router.head("/relay/:id") { _, _ in Response(status: .ok) }
        router.put("/relay/:id") { request, context in try await put(request, context) }
        router.get("/relay/:id") { request, context in try await get(request, context) }
    }

    /// Checks the signature and finds the run parameter the ID stands for.
    private func target(
        _ request: Request,
        _ context: AppRequestContext,
        _ permission: SignedURLPermission
    ) async throws -> (runId: Int64, parameter: String, isInput: Bool) {
        let raw = try context.parameters.require("id")
        guard let id = EphemeralBufferID(raw) else { throw APIError.notFound }
        let query = try QueryParameters(request.uri.query).signedURLParameters()
        _ = try validator.validate(query: query, containerId: id.suffix, required: permission)
        context.caller = .signedURL(containerId: id.suffix)
        return try await engine.ephemeralTarget(bufferId: raw)
    }

    private func put(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let target = try await target(request, context, .createBlob)
        guard target.isInput else {
            throw APIError(
                .methodNotAllowed,
                code: "InvalidOperation",
                message: "the buffer is an output buffer and cannot be written to"
            )
        }
        try await engine.withEphemeralInput(runId: target.runId, parameter: target.parameter) { writer in
            for try await chunk in request.body { try await writer.write(chunk) }
        }
        return Response(status: .accepted)
    }

    private func get(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let target = try await target(request, context, .readBlob)
        guard !target.isInput else {
            throw APIError(
                .methodNotAllowed,
                code: "InvalidOperation",
                message: "the buffer is an input buffer and cannot be read from"
            )
        }
        let engine = engine
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream"],
            body: Self.streamingBody { push in
                try await engine.withEphemeralOutput(runId: target.runId, parameter: target.parameter) {
                    for try await chunk in $0 { try await push(chunk) }
                }
            }
        )
    }

    /// A response body of what `produce` pushes. `produce` runs in a child task and hands its chunks over through a
    /// bounded queue, so the response writer never leaves the body's task.
    static func streamingBody(
        _ produce: @escaping @Sendable (_ push: @Sendable (ByteBuffer) async throws -> Void) async throws -> Void
    ) -> ResponseBody {
        ResponseBody { writer in
            let queue = HandoffQueue<ByteBuffer>(capacity: 4)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await produce { try await queue.push($0) }
                        queue.close()
                    } catch {
                        queue.fail(error)
                        throw error
                    }
                }
                do {
                    while let chunk = try await queue.pop() { try await writer.write(chunk) }
                } catch {
                    queue.fail(error)
                    throw error
                }
                try await group.waitForAll()
            }
            try await writer.finish(nil)
        }
    }
}
