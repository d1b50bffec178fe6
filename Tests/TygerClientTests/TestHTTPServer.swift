import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1 and an ephemeral port, answering every request with `respond`, and
/// recording what it was asked.
final class TestHTTPServer: Sendable {
    /// A request as the server saw it.
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// What to answer.
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders = [:]
        var body: String = ""
        /// Close the connection instead of answering (a server shedding connections).
        var closeWithoutAnswer = false
    }

    typealias Responder = @Sendable (Request, Int) -> Response

    private let boundPort = Mutex(0)
    private let recorded = Mutex<[Request]>([])

    private init() {}

    /// The port the server listens on.
    var port: Int { boundPort.withLock { $0 } }

    /// Everything the server was asked so far, in order.
    var requests: [Request] { recorded.withLock { $0 } }

    /// `http://127.0.0.1:<port>`.
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Runs `body` with a server that answers request number `n` (0-based) with `respond(request, n)`; the server
    /// is closed afterwards.
    static func withServer<T>(
        _ respond: @escaping Responder,
        _ body: (TestHTTPServer) async throws -> T
    ) async throws -> T {
        let server = TestHTTPServer()
        // A loop of its own: a full test run keeps the shared loops busy (once a retried request to this server got
        // no answer in 100 s there), and a test's answers must not wait for other tests.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        Handler { request in
                            let n = server.recorded.withLock {
                                $0.append(request)
                                return $0.count - 1
                            }
                            return respond(request, n)
                        }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.boundPort.withLock { $0 = channel.localAddress?.port ?? 0 }
        do {
            let result = try await body(server)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let respond: @Sendable (Request) -> Response
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(_ respond: @escaping @Sendable (Request) -> Response) { self.respond = respond }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body.clear()
            case .body(var b):
                body.writeBuffer(&b)
            case .end:
                guard let head else { return }
                let response = respond(Request(method: head.method, uri: head.uri, headers: head.headers, body: body))
                if response.closeWithoutAnswer {
                    context.close(promise: nil)
                    return
                }
                var headers = response.headers
                headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.utf8.count)")
                let responseHead = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
                context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                if head.method != .HEAD {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
