import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TygerClient
import TygerModel
import TygerStorage

/// Log events kept in memory, to check what the client logs.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }

    /// A logger at `level` whose events land here.
    func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let entry = Entry(level: event.level, message: event.message.description, metadata: event.metadata ?? [:])
            capture.entries.withLock { $0.append(entry) }
        }
    }
}

/// Runs `body` with a client of a test server answering with `respond`.
func withClient<T>(
    logger: Logger = ControlPlaneClient.loggingDisabled,
    _ respond: @escaping TestHTTPServer.Responder,
    _ body: (ControlPlaneClient, TestHTTPServer) async throws -> T
) async throws -> T {
    try await TestHTTPServer.withServer(respond) { server in
        try await HTTPTransport.withTransport(bearerToken: "secret") { transport in
            let url = try ServiceURL(server.baseURL)
            return try await body(ControlPlaneClient(server: url, transport: transport, logger: logger), server)
        }
    }
}

let bufferJSON =
    #"{"id":"abc","location":"local","createdAt":"2026-01-02T03:04:05.123456Z","tags":{"k":"v"},"eTag":"7"}"#

@Suite struct ControlPlaneClientTests {
    @Test func typedCallsSendTheAPIVersionTheTokenAndDecodeTheAnswer() async throws {
        let json: HTTPHeaders = ["Content-Type": "application/json"]
        try await withClient({ _, _ in .init(status: .ok, headers: json, body: bufferJSON) }) { client, server in
            let buffer = try await client.getBuffer(id: "abc")
            #expect(buffer.id == "abc")
            #expect(buffer.tags == ["k": "v"])
            #expect(buffer.eTag == "7")
            let request = try #require(server.requests.first)
            #expect(request.method == .GET)
            #expect(request.uri == "/buffers/abc?api-version=1.0")
            #expect(request.headers.first(name: "Authorization") == "Bearer secret")
        }
    }

    @Test func filtersAndBodiesGoOnTheWire() async throws {
        try await withClient({ request, _ in
            request.uri.hasPrefix("/buffers/count")
                ? .init(status: .ok, body: "3") : .init(status: .created, body: bufferJSON)
        }) { client, server in
            #expect(try await client.countBuffers(BufferFilter(tags: ["b": "2", "a": "x y"], softDeleted: true)) == 3)
            _ = try await client.createBuffer(Buffer(location: "local", tags: ["k": "v"]))
            let requests = server.requests
            #expect(requests[0].uri == "/buffers/count?api-version=1.0&tag%5Ba%5D=x%20y&tag%5Bb%5D=2&softDeleted=true")
            #expect(requests[1].method == .POST)
            #expect(requests[1].headers.first(name: "Content-Type") == "application/json")
            let sent = try TygerJSON.makeDecoder().decode(Buffer.self, from: Data(requests[1].body.readableBytesView))
            #expect(sent.location == "local" && sent.tags == ["k": "v"])
        }
    }

    @Test func anErrorEnvelopeBecomesCodeAndMessage() async throws {
        let envelope = #"{"error":{"code":"NotFound","message":"The resource was not found"}}"#
        try await withClient({ _, _ in .init(status: .notFound, body: envelope) }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.getRun(id: "42") }
            #expect(error?.code == .http)
            #expect(error?.status == 404)
            #expect(error?.errorCode == "NotFound")
            // A NotFound names what the request asked for (the server's message is upstream's generic one).
            #expect(error?.message == "NotFound: run '42' not found")
        }
        try await withClient({ _, _ in .init(status: .notFound, body: envelope) }) { client, _ in
            let buffer = await #expect(throws: TygerClientError.self) { try await client.getBuffer(id: "b1") }
            #expect(buffer?.message == "NotFound: buffer 'b1' not found")
            let version = await #expect(throws: TygerClientError.self) {
                try await client.getCodespec(name: "c", version: 3)
            }
            #expect(version?.message == "NotFound: codespec 'c' version 3 not found")
        }
        // Another code keeps the server's message.
        let other = #"{"error":{"code":"InvalidInput","message":"bad"}}"#
        try await withClient({ _, _ in .init(status: .notFound, body: other) }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.getRun(id: "42") }
            #expect(error?.message == "InvalidInput: bad")
        }
    }

    @Test func unauthorizedIsAnAuthenticationError() async throws {
        try await withClient({ _, _ in .init(status: .unauthorized) }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.metadata() }
            #expect(error?.code == .authentication)
            #expect(error?.status == 401)
            #expect(error?.message.contains("tyger login") == true)
        }
        let envelope = #"{"error":{"code":"Unauthorized","message":"bad token"}}"#
        try await withClient({ _, _ in .init(status: .unauthorized, body: envelope) }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.metadata() }
            #expect(error?.code == .authentication)
            #expect(error?.message == "Unauthorized: bad token")
        }
    }

    @Test func aBodyThatIsNotAnEnvelopeGivesTheStatus() async throws {
        try await withClient({ _, _ in .init(status: .internalServerError, body: "<html>oops</html>") }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.getBuffer(id: "x") }
            #expect(error?.code == .http)
            #expect(error?.message == "unexpected status code 500")
        }
    }

    @Test func anInvalidAnswerIsReportedAsSuch() async throws {
        try await withClient({ _, _ in .init(status: .ok, body: #"{"id":"x","colour":"blue"}"#) }) { client, _ in
            let error = await #expect(throws: TygerClientError.self) { try await client.getBuffer(id: "x") }
            #expect(error?.code == .invalidResponse)
        }
    }

    @Test func debugLogsCarryMethodPathStatusDurationAndRequestID() async throws {
        let capture = LogCapture()
        try await withClient(
            logger: capture.logger(),
            { _, _ in
                .init(status: .ok, headers: ["Request-Id": "req-1234"], body: bufferJSON)
            }
        ) { client, _ in
            _ = try await client.getBuffer(id: "abc")
        }
        let entry = try #require(capture.all.first { $0.message == "Control-plane request" })
        #expect(entry.level == .debug)
        #expect(entry.metadata["method"]?.description == "GET")
        #expect(entry.metadata["path"]?.description == "/buffers/abc")
        #expect(entry.metadata["status"]?.description == "200")
        #expect(entry.metadata["requestId"]?.description == "req-1234")
        #expect(entry.metadata["duration"]?.description.hasSuffix("ms") == true)
    }

    @Test func atInfoNothingIsLogged() async throws {
        let capture = LogCapture()
        try await withClient(logger: capture.logger(level: .info), { _, _ in .init(status: .ok, body: bufferJSON) }) {
            client,
            _ in
            _ = try await client.getBuffer(id: "abc")
        }
        #expect(capture.all.isEmpty)
    }

    @Test func watchDecodesEachLine() async throws {
        let lines = [
            #"{"id":7,"status":"Pending","job":{"codespec":"c","replicas":1}}"#,
            #"{"id":7,"status":"Running","job":{"codespec":"c","replicas":1}}"#,
            #"{"id":7,"status":"Succeeded","job":{"codespec":"c","replicas":1}}"#,
        ]
        let stream = lines.joined(separator: "\n") + "\n"
        try await withClient({ _, _ in .init(status: .ok, body: stream) }) { client, server in
            var statuses: [RunStatus?] = []
            try await client.watchRun(id: "7") { statuses.append($0.status) }
            #expect(statuses == [.pending, .running, .succeeded])
            #expect(server.requests.first?.uri == "/runs/7?api-version=1.0&watch=true")
        }
    }
}

@Suite struct RedirectTests {
    /// A server that redirects everything to `target`, which records whether anyone followed.
    func withRedirect(_ body: (ServiceURL, TestHTTPServer) async throws -> Void) async throws {
        try await TestHTTPServer.withServer({ _, _ in .init(status: .ok, body: bufferJSON) }) { target in
            try await TestHTTPServer.withServer({ request, _ in
                .init(status: .temporaryRedirect, headers: ["Location": target.baseURL + request.uri])
            }) { redirecting in
                try await body(try ServiceURL(redirecting.baseURL), target)
            }
        }
    }

    /// A connection the server closes before answering (as one shedding connections does) is tried again for requests
    /// that are safe to repeat (an access URL), and not for a buffer create, which could make a second buffer.
    @Test func connectionsClosedBeforeAnAnswerAreRetriedWhenSafe() async throws {
        try await TestHTTPServer.withServer({ request, n in
            if n == 0 || request.method == .POST && request.uri.hasPrefix("/buffers?") {
                return .init(status: .ok, closeWithoutAnswer: true)
            }
            return .init(status: .created, body: #"{"uri":"http://127.0.0.1:1/containers/b?sig=x"}"#)
        }) { server in
            try await HTTPTransport.withTransport { transport in
                let client = ControlPlaneClient(server: try ServiceURL(server.baseURL), transport: transport)
                let access = try await client.bufferAccess(id: "b", writeable: false)
                #expect(access.uri.hasPrefix("http://127.0.0.1:1/containers/b"))
                #expect(server.requests.count == 2, "\(server.requests.map(\.uri))")
                let error = await #expect(throws: TygerClientError.self) { try await client.createBuffer(Buffer()) }
                #expect(error?.closedBeforeAnswer == true)
                #expect(server.requests.count == 3, "a create was sent again: \(server.requests.map(\.uri))")
            }
        }
    }

    @Test func theControlPlaneClientDoesNotFollowRedirects() async throws {
        try await withRedirect { url, target in
            try await HTTPTransport.withTransport(bearerToken: "secret") { transport in
                let client = ControlPlaneClient(server: url, transport: transport)
                let error = await #expect(throws: TygerClientError.self) { try await client.getBuffer(id: "abc") }
                #expect(error?.status == 307)
            }
            #expect(target.requests.isEmpty, "the token went to the redirect's target")
        }
    }

    @Test func theDataPlaneClientDoesNotFollowRedirects() async throws {
        try await withRedirect { url, target in
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: url.with(path: "/c", query: "sig=x"),
                    transport: transport,
                    retryPolicy: quickRetries
                )
                await #expect(throws: (any Error).self) { try await store.get("blob") }
            }
            #expect(target.requests.isEmpty, "the signed URL went to the redirect's target")
        }
    }
}

@Suite struct ScopedTransportTests {
    @Test func aTransportIsShutDownWhenItsBodyThrows() async throws {
        struct Boom: Error {}
        // AsyncHTTPClient asserts (in debug builds) when a client is deallocated without shutdown: reaching the end
        // of this test is the check.
        await #expect(throws: Boom.self) {
            try await HTTPTransport.withTransport { _ in throw Boom() }
        }
        let value = try await HTTPTransport.withTransport { _ in 42 }
        #expect(value == 42)
    }
}
