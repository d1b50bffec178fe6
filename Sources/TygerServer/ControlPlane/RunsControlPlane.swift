public import Hummingbird
public import Logging
public import ServiceLifecycle
import HTTPTypes
import NIOCore
import TygerControlPlane
import TygerCore
import TygerModel
public import TygerRunEngine
import TygerRunEngineHTTP
private import Synchronization

/// Mounts codespecs and runs (`/codespecs/**`, `/runs/**`) and the ephemeral-buffer relay (`/relay/<id>`), and runs
/// the run engine beside the listeners.
///
/// Buffers the runs create come from the buffers control plane; each buffer's data is the server's own
/// `FileBlobStore` directory, which the local executor streams to and from the run's named pipes.
public final class RunsControlPlane: ControlPlaneRoutes {
    private let buffers: BuffersControlPlane
    private let store: SQLiteRunEngineStore
    private let configure: @Sendable (inout RunEngineConfiguration) -> Void
    private let logger: Logger
    private let engine = Mutex<RunEngine?>(nil)

    /// - Parameters:
    ///   - buffers: The buffers control plane (creates the buffers runs need).
    ///   - store: Codespec and run repositories.
    ///   - configure: Adjusts the engine configuration (timings).
    public init(
        buffers: BuffersControlPlane, store: SQLiteRunEngineStore, logger: Logger,
        configure: @escaping @Sendable (inout RunEngineConfiguration) -> Void = { _ in }
    ) {
        self.buffers = buffers
        self.store = store
        self.logger = logger
        self.configure = configure
    }

    /// The engine, created once per server.
    public func engine(server: TygerServerApplication) -> RunEngine {
        engine.withLock { existing in
            if let existing { return existing }
            let manager = buffers.manager(server: server)
            var configuration = RunEngineConfiguration(dataDirectory: server.layout.root)
            configure(&configuration)
            let storage = server.buffers
            let created = RunEngine(
                configuration: configuration, codespecs: store.codespecs, runs: store.runs,
                blobStore: { id in storage.store(for: id) },
                createBuffer: { tags in try await manager.create(Buffer(tags: tags)).id },
                bufferExists: { id in (try? await manager.get(id: id)) != nil },
                logger: logger)
            existing = created
            return created
        }
    }

    public func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication) {
        let engine = engine(server: server)
        let relay = EphemeralRelay(engine: engine, server: server)
        buffers.ephemeralAccess.withLock {
            $0 = { id, writeable, transport in try await relay.accessURL(id: id, writeable: writeable, transport: transport) }
        }
        let versioned = router.group().add(middleware: APIVersionMiddleware<AppRequestContext>())
        CodespecsController<AppRequestContext>(engine: engine).addRoutes(to: versioned)
        RunsController<AppRequestContext>(engine: engine).addRoutes(to: versioned)
        relay.addRoutes(to: router)
    }

    public func services(server: TygerServerApplication) -> [any Service] { [engine(server: server)] }
}

/// Ephemeral buffers (`_` arguments of a run): `POST /buffers/run-<id>-temp-<x>/access` hands out a relay URL,
/// `PUT /relay/<id>` streams a body into the run's input pipe, `GET /relay/<id>` streams its output pipe; nothing is
/// stored. URLs are signed for the unqualified ID `<x>`, as upstream.
struct EphemeralRelay: Sendable {
    let engine: RunEngine
    let server: TygerServerApplication

    static func unqualified(_ id: String) -> String? {
        // run-<digits>-temp-<alphanumerics>
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "run", !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber),
            parts[2] == "temp", !parts[3].isEmpty, parts[3].allSatisfy({ $0.isLetter || $0.isNumber })
        else { return nil }
        return String(parts[3])
    }

    func addRoutes(to router: Router<AppRequestContext>) {
        router.head("/relay/:id") { _, _ in Response(status: .ok) }
        router.put("/relay/:id") { request, context in try await put(request, context) }
        router.get("/relay/:id") { request, context in try await get(request, context) }
    }

    /// The access URL of an ephemeral buffer ID, or nil when `id` is not one.
    func accessURL(id: String, writeable: Bool, transport: ListenerTransport) async throws -> String? {
        guard let short = Self.unqualified(id) else { return nil }
        _ = try await engine.ephemeralTarget(bufferId: id)
        guard let endpoint = server.endpoints.endpoint(for: transport) else {
            throw APIError(.badRequest, code: "BadRequest", message: "no listener for relay URLs")
        }
        let query = try server.issuer.query(
            containerId: short, permissions: writeable ? [.createBlob, .readBlob] : [.readBlob], ttl: .seconds(3600))
        return "\(endpoint)/relay/\(id)?\(query)&relay=true"
    }

    private func authorize(_ request: Request, _ context: AppRequestContext, _ permission: SignedURLPermission) throws
        -> (runId: Int64, parameter: String, isInput: Bool, id: String)
    {
        let id = try context.parameters.require("id")
        guard let short = Self.unqualified(id) else {
            throw APIError(.notFound, code: "NotFound", message: "The resource was not found")
        }
        var query: [String: String] = [:]
        for (k, v) in request.uri.queryParameters { query[String(k)] = String(v) }
        _ = try server.validator.validate(query: query, containerId: short, required: permission)
        return (0, "", false, id)
    }

    private func put(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (_, _, _, id) = try authorize(request, context, .createBlob)
        let target = try await engine.ephemeralTarget(bufferId: id)
        guard target.isInput else {
            throw APIError(.methodNotAllowed, code: "InvalidOperation", message: "the buffer is an output buffer and cannot be written to")
        }
        try await engine.withEphemeralInput(runId: target.runId, parameter: target.parameter) { writer in
            for try await chunk in request.body { try await writer.write(chunk) }
        }
        return Response(status: .accepted)
    }

    private func get(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (_, _, _, id) = try authorize(request, context, .readBlob)
        let target = try await engine.ephemeralTarget(bufferId: id)
        guard !target.isInput else {
            throw APIError(.methodNotAllowed, code: "InvalidOperation", message: "the buffer is an input buffer and cannot be read from")
        }
        let engine = engine
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream"],
            body: ResponseBody { writer in
                // The pipe is read in a child task and handed over through a bounded queue, so the response writer
                // never leaves this task.
                let queue = HandoffQueue<ByteBuffer>(capacity: 4)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            try await engine.withEphemeralOutput(runId: target.runId, parameter: target.parameter) { reader in
                                for try await chunk in reader { try await queue.push(chunk) }
                            }
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
            })
    }
}
