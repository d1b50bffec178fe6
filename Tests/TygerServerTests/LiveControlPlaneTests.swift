import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing
import TygerControlPlane
import TygerCore
import TygerModel
import TygerRunEngine
import TygerServer
import TygerTestSupport

/// A `tyger-server` in process: the real buffers and runs control planes (the run engine included) over a temporary
/// data directory, on its unix socket and on TCP (127.0.0.1, any port).
struct LiveControlPlane: Sendable {
    let app: TygerServerApplication
    let tcpEndpoint: String
    let token: String
    let client: HTTPClient

    /// One response, its body read whole.
    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try TygerJSON.makeDecoder().decode(type, from: Data(body.utf8))
        }
    }

    /// Runs `body` with the server up; stops it afterwards, also when `body` throws.
    static func run(
        buffers bufferConfiguration: BufferManager.Configuration = .init(),
        _ body: @Sendable (LiveControlPlane) async throws -> Void
    ) async throws {
        let directory = TemporaryDirectory()
        let dataDirectory = directory.path + "/data"
        let logger = Logger(label: "test")
        let tokens = InMemoryTokenStore()
        let issued = try await tokens.create(name: "live")
        var configuration = TygerServerConfiguration(dataDirectory: dataDirectory)
        configuration.tokenStore = tokens
        configuration.tcp = TCPListenerConfiguration(host: "127.0.0.1", port: 0)
        let buffers = BuffersControlPlane(
            repository: InMemoryBufferRepository(),
            configuration: bufferConfiguration,
            logger: logger
        )
        let store = try SQLiteRunEngineStore(directory: dataDirectory)
        configuration.controlPlane = [buffers, RunsControlPlane(buffers: buffers, store: store, logger: logger)]
        let (listening, continuation) = AsyncStream.makeStream(of: String.self)
        configuration.onListening = { continuation.yield($0) }
        let app = try TygerServerApplication(configuration: configuration)
        let group = ServiceGroup(services: try app.makeServices(logger: logger), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var tcp: String?
            var socket = false
            for await endpoint in listening {
                if endpoint.hasPrefix("http+unix://") { socket = true } else { tcp = endpoint }
                if socket, tcp != nil { break }
            }
            let server = LiveControlPlane(
                app: app,
                tcpEndpoint: try #require(tcp),
                token: issued.token,
                client: HTTPClient(eventLoopGroupProvider: .singleton)
            )
            do {
                try await body(server)
            } catch {
                try? await server.client.shutdown()
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            try await server.client.shutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        _ = directory
    }

    /// Sends a request over the unix socket (`tcp: false`, trusted) or over TCP with the bearer token.
    ///
    /// - Parameter uri: Path and query, sent as written (percent-encoding kept).
    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil, tcp: Bool = false) async throws -> Answer {
        var request: HTTPClientRequest
        if tcp {
            request = HTTPClientRequest(url: tcpEndpoint + uri)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        } else {
            let url = try #require(URL(httpURLWithSocketPath: app.layout.socketPath, uri: uri))
            request = HTTPClientRequest(url: url.absoluteString)
        }
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: response.status, headers: response.headers, body: String(buffer: bytes))
    }
}

private let v = "api-version=1.0"

struct LiveControlPlaneTests {
    /// The Go CLI (and ours) percent-encode the brackets of `tag[k]`: the runs routes must read them as tags, as
    /// the buffers routes always did. Before, `GET /runs?tag%5Bk%5D=v` returned every run.
    @Test func percentEncodedTagFiltersSelectRunsAndBuffers() async throws {
        try await LiveControlPlane.run { server in
            let codespec = #"{"kind":"job","image":"ubuntu","command":["true"]}"#
            #expect(try await server.send(.PUT, "/codespecs/noop?\(v)", body: codespec).status == .created)
            var tagged: [Int64] = []
            for tags in [#"{"k":"v"}"#, #"{"k":"other"}"#, #"{"k":"v","x":"1"}"#, "{}"] {
                let created = try await server.send(
                    .POST,
                    "/runs?\(v)",
                    body: #"{"job":{"codespec":"noop"},"tags":\#(tags)}"#
                )
                #expect(created.status == .created, "\(created.body)")
                let run = try created.decode(Run.self)
                if tags.contains(#""k":"v""#) { tagged.append(try #require(run.id)) }
            }
            for tcp in [false, true] {
                let list = try await server.send(.GET, "/runs?\(v)&tag%5Bk%5D=v", tcp: tcp)
                #expect(list.status == .ok, "\(list.body)")
                #expect(Set(try list.decode(Page<Run>.self).items.compactMap(\.id)) == Set(tagged))
                let both = try await server.send(.GET, "/runs?\(v)&tag%5Bk%5D=v&tag%5Bx%5D=1", tcp: tcp)
                #expect(try both.decode(Page<Run>.self).items.compactMap(\.id) == [tagged[1]])
                let counts = try await server.send(.GET, "/runs/counts?\(v)&tag%5Bk%5D=v", tcp: tcp)
                #expect(try counts.decode([String: Int].self).values.reduce(0, +) == 2, "\(counts.body)")
            }
            // Paging keeps the encoded filter in nextLink.
            let first = try await server.send(.GET, "/runs?\(v)&tag%5Bk%5D=v&limit=1")
            let page = try first.decode(Page<Run>.self)
            #expect(page.items.count == 1)
            let next = try #require(page.nextLink)
            #expect(next.hasPrefix("/runs?\(v)&tag%5Bk%5D=v&limit=1&_ct="))
            let second = try await server.send(.GET, next).decode(Page<Run>.self)
            #expect(second.items.count == 1 && second.nextLink == nil)
            #expect(Set((page.items + second.items).compactMap(\.id)) == Set(tagged))

            for tags in [#"{"k":"v"}"#, #"{"k":"w"}"#] {
                #expect(try await server.send(.POST, "/buffers?\(v)", body: #"{"tags":\#(tags)}"#).status == .created)
            }
            let buffers = try await server.send(.GET, "/buffers?\(v)&tag%5Bk%5D=v").decode(Page<Buffer>.self)
            #expect(buffers.items.map(\.tags) == [["k": "v"]])
            #expect(try await server.send(.GET, "/buffers/count?\(v)&excludeTag%5Bk%5D=v").body == "1")
        }
    }

    /// `POST /buffers/run-<id>-temp-<x>/access` goes through the buffer manager's ephemeral provider: a relay URL,
    /// and over the unix socket the run's pipe, once the run has made it.
    @Test func ephemeralAccessGivesARelayURLAndOnTheSocketThePipe() async throws {
        try await LiveControlPlane.run { server in
            let spec =
                #"{"kind":"job","image":"ubuntu","command":["bash","-c","cat \"$IN_PIPE\" > \"$OUT_PIPE\""],"#
                + #""buffers":{"inputs":["in"],"outputs":["out"]}}"#
            let created = try await server.send(
                .POST,
                "/runs?\(v)",
                body: #"{"job":{"codespec":\#(spec),"buffers":{"in":"_","out":"_"}}}"#
            )
            #expect(created.status == .created, "\(created.body)")
            let run = try created.decode(Run.self)
            let runId = try #require(run.id)
            let input = try #require(run.job.buffers?["in"])
            let output = try #require(run.job.buffers?["out"])
            #expect(EphemeralBufferID(input)?.runId == runId)

            let local = try await server.send(.POST, "/buffers/\(input)/access?\(v)&writeable=true")
            #expect(local.status == .created, "\(local.body)")
            let access = try local.decode(BufferAccess.self)
            #expect(access.uri.hasPrefix("http+unix://\(server.app.layout.socketPath):/relay/\(input)?"))
            #expect(access.uri.hasSuffix("&relay=true"))
            #expect(access.localPath == server.app.layout.runPipePath(runId, parameter: "in"))
            var status = stat()
            #expect(stat(try #require(access.localPath), &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO)

            // Over TCP the caller may be elsewhere: a TCP relay URL and no pipe.
            let remote = try await server.send(.POST, "/buffers/\(output)/access?\(v)", tcp: true)
            #expect(remote.status == .created, "\(remote.body)")
            let remoteAccess = try remote.decode(BufferAccess.self)
            #expect(remoteAccess.uri.hasPrefix("\(server.tcpEndpoint)/relay/\(output)?"))
            #expect(remoteAccess.localPath == nil)
            #expect(!remote.body.contains("localPath"))

            // Unknown ephemeral buffers are 404s, whether the run or only the ID is unknown.
            for id in ["run-\(runId + 100)-temp-abc", "run-\(runId)-temp-abc"] {
                let missing = try await server.send(.POST, "/buffers/\(id)/access?\(v)")
                #expect(missing.status == .notFound, "\(missing.body)")
                #expect(try missing.decode(ErrorResponse.self).error.code == "NotFound")
            }

            // Once the run has finished there is no pipe to hand out.
            #expect(try await server.send(.POST, "/runs/\(runId)/cancel?\(v)").status == .accepted)
            let deadline = ContinuousClock.now + .seconds(30)
            while !(try await server.send(.GET, "/runs/\(runId)?\(v)").decode(Run.self).status ?? .pending).isTerminal {
                try #require(ContinuousClock.now < deadline, "run \(runId) did not finish")
                try await Task.sleep(for: .milliseconds(50))
            }
            let late = try await server.send(.POST, "/buffers/\(output)/access?\(v)")
            #expect(late.status == .created, "\(late.body)")
            #expect(try late.decode(BufferAccess.self).localPath == nil)
        }
    }

    /// The relay checks its own signature: no token needed with one, 401 without one on TCP.
    @Test func relayNeedsItsSignatureOnTCP() async throws {
        try await LiveControlPlane.run { server in
            let unsigned = try await server.client.execute(
                HTTPClientRequest(url: server.tcpEndpoint + "/relay/run-1-temp-abc"),
                timeout: .seconds(10)
            )
            #expect(unsigned.status == .unauthorized)
            let forged = try await server.client.execute(
                HTTPClientRequest(url: server.tcpEndpoint + "/relay/run-1-temp-abc?\(v)&sig=x"),
                timeout: .seconds(10)
            )
            #expect(forged.status == .forbidden)
        }
    }
}
