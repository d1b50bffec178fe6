import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
import TygerControlPlane
import TygerModel
import TygerServer
import TygerTestSupport

/// A wall clock the test moves by hand.
final class ManualWallClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by duration: Duration) {
        current.withLock { $0 = RFC3339.adding(duration, to: $0) }
    }

    var wallClock: WallClock { WallClock { [self] in self.now } }
}

/// The buffer repositories the controller tests run against.
enum RepositoryKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory
    case sqlite

    var testDescription: String { rawValue }

    /// Makes an empty repository; the directory (for SQLite) lives as long as the returned holder.
    func make() throws -> (repository: any BufferRepository, directory: TemporaryDirectory?) {
        switch self {
        case .inMemory:
            return (InMemoryBufferRepository(), nil)
        case .sqlite:
            let directory = TemporaryDirectory()
            return (try SQLiteBufferRepository(path: directory.path + "/control-plane.sqlite"), directory)
        }
    }
}

/// A router with the server's error mapping and `routes` (no authentication: the tests are the trusted caller).
func controllerRouter(_ routes: (Router<AppRequestContext>) -> Void) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    routes(router)
    return router
}

/// The `/buffers` routes, moved here with the controller from the control-plane module.
struct BuffersControllerTests {
    let clock = ManualWallClock()
    let storage = InMemoryBufferStorageProvider()

    private func app(_ kind: RepositoryKind = .inMemory) throws -> (some ApplicationProtocol, TemporaryDirectory?) {
        let (repo, dir) = try kind.make()
        let manager = BufferManager(repository: repo, storage: storage, clock: clock.wallClock)
        let router = controllerRouter { router in
            BuffersController(manager: manager)
                .addRoutes(to: router.group("buffers").add(middleware: APIVersionMiddleware()))
        }
        return (Application(router: router), dir)
    }

    private static let v = "api-version=1.0"

    private func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
    }

    private func expectError(
        _ response: TestResponse,
        _ status: HTTPResponse.Status,
        code: String,
        contains fragment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        let error = try decode(ErrorResponse.self, response).error
        #expect(error.code == code, sourceLocation: sourceLocation)
        #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
    }

    @discardableResult
    private func create(_ client: some TestClientProtocol, _ body: String) async throws -> Buffer {
        let response = try await client.execute(
            uri: "/buffers?\(Self.v)",
            method: .post,
            headers: [.contentType: "application/json"],
            body: ByteBuffer(string: body)
        )
        #expect(response.status == .created, "\(String(buffer: response.body))")
        return try decode(Buffer.self, response)
    }

    @Test(arguments: RepositoryKind.allCases)
    func createGetAndHeaders(kind: RepositoryKind) async throws {
        let (app, dir) = try app(kind)
        defer { _ = dir }
        try await app.test(.router) { client in
            // The exact body the Go CLI sends for `tyger buffer create --tag a=b`.
            let response = try await client.execute(
                uri: "/buffers?\(Self.v)",
                method: .post,
                body: ByteBuffer(string: #"{"id":"","createdAt":"0001-01-01T00:00:00Z","tags":{"a":"b"}}"#)
            )
            #expect(response.status == .created)
            let buffer = try decode(Buffer.self, response)
            #expect(buffer.id.count == 26)
            #expect(buffer.location == "local")
            #expect(buffer.tags == ["a": "b"])
            #expect(response.headers[.location] == "/buffers/\(buffer.id)")
            #expect(response.headers[.eTag] == buffer.eTag)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            let raw = String(buffer: response.body)
            #expect(!raw.contains("isSoftDeleted"))

            let get = try await client.execute(uri: "/buffers/\(buffer.id)?\(Self.v)", method: .get)
            #expect(get.status == .ok)
            #expect(try decode(Buffer.self, get) == buffer)
            #expect(get.headers[.eTag] == buffer.eTag)

            try expectError(
                try await client.execute(uri: "/buffers/\(buffer.id)?\(Self.v)&softDeleted=true", method: .get),
                .notFound,
                code: "NotFound",
                contains: "The resource was not found"
            )
            try expectError(
                try await client.execute(uri: "/buffers/\(buffer.id)?\(Self.v)&softDeleted=maybe", method: .get),
                .badRequest,
                code: "InvalidInput",
                contains: "softDeleted must be true or false"
            )
        }
    }

    @Test func createsFromAnEmptyObject() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            let response = try await client.execute(
                uri: "/buffers?\(Self.v)",
                method: .post,
                body: ByteBuffer(string: "{}")
            )
            #expect(response.status == .created)
            #expect(String(buffer: response.body).contains(#""location":"local""#))
        }
    }

    @Test func rejectsBadCreateBodies() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            let cases: [(String, String)] = [
                (#"{"location":"local","bogus":1}"#, "Object contains unrecognized properties 'bogus'."),
                (#"{"location":"#, "Error deserializing input"),
                ("", "does not contain any JSON tokens"),
                ("null", "null is not a valid input value"),
                (#"{"location":"westus"}"#, "Buffer location can only be 'local'."),
                (#"{"tags":{"bad key":"v"}}"#, "Tag key 'bad key' is invalid"),
            ]
            for (body, fragment) in cases {
                let response = try await client.execute(
                    uri: "/buffers?\(Self.v)",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                try expectError(response, .badRequest, code: "InvalidInput", contains: fragment)
            }
            let tags = (0...100).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
            try expectError(
                try await client.execute(
                    uri: "/buffers?\(Self.v)",
                    method: .post,
                    body: ByteBuffer(string: "{\"tags\":{\(tags)}}")
                ),
                .badRequest,
                code: "InvalidInput",
                contains: "maximum of 100 tags"
            )
            #expect(storage.containerIDs.isEmpty)
        }
    }

    @Test func apiVersionIsRequired() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            for uri in ["/buffers", "/buffers?api-version=", "/buffers/count"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .badRequest)
                let error = try decode(ErrorResponse.self, response).error
                #expect(
                    error
                        == ErrorInfo(
                            code: "ApiVersionUnspecified",
                            message: "Unspecified API version",
                            apiVersions: ["1.0"]
                        )
                )
            }
            let response = try await client.execute(uri: "/buffers?api-version=2.0", method: .post)
            let error = try decode(ErrorResponse.self, response).error
            #expect(
                error
                    == ErrorInfo(
                        code: "UnsupportedApiVersion",
                        message: "Unsupported API version",
                        apiVersions: ["1.0"]
                    )
            )
        }
    }

    @Test func legacyV1PathImpliesVersion() async throws {
        let (repo, _) = try RepositoryKind.inMemory.make()
        let manager = BufferManager(repository: repo, storage: storage, clock: clock.wallClock)
        let router = controllerRouter { router in
            BuffersController(manager: manager)
                .addRoutes(to: router.group("v1/buffers").add(middleware: APIVersionMiddleware()))
        }
        try await Application(router: router).test(.router) { client in
            let created = try await client.execute(
                uri: "/v1/buffers",
                method: .post,
                body: ByteBuffer(string: #"{"tags":{"a":"b"}}"#)
            )
            #expect(created.status == .created)
            #expect(created.headers[.location]?.hasPrefix("/v1/buffers/") == true)
            #expect(try await client.execute(uri: "/v1/buffers?api-version=", method: .get).status == .ok)
            let wrong = try await client.execute(uri: "/v1/buffers?api-version=0.9", method: .get)
            #expect(try decode(ErrorResponse.self, wrong).error.code == "UnsupportedApiVersion")
        }
    }

    @Test(arguments: RepositoryKind.allCases)
    func listPaginatesWithNextLinkAndFilters(kind: RepositoryKind) async throws {
        let (app, dir) = try app(kind)
        defer { _ = dir }
        try await app.test(.router) { client in
            var created: [String] = []
            for i in 0..<7 {
                let color = i % 2 == 0 ? "red" : "blue"
                created.append(try await create(client, #"{"tags":{"color":"\#(color)","n":"\#(i)"}}"#).id)
                clock.advance(by: .seconds(1))
            }
            // The Go CLI percent-encodes the brackets.
            var uri: String? = "/buffers?\(Self.v)&tag%5Bcolor%5D=red&excludeTag[n]=2&limit=2"
            var seen: [String] = []
            var pages = 0
            while let next = uri {
                let response = try await client.execute(uri: next, method: .get)
                #expect(response.status == .ok)
                let page = try decode(Page<Buffer>.self, response)
                seen += page.items.map(\.id)
                pages += 1
                if let link = page.nextLink {
                    #expect(link.hasPrefix("/buffers?api-version=1.0&tag%5Bcolor%5D=red&excludeTag[n]=2&limit=2&_ct="))
                    #expect(link.components(separatedBy: "_ct=").count == 2)
                }
                uri = page.nextLink
            }
            // red = 0, 2, 4, 6; n=2 excluded; newest first.
            #expect(seen == [created[6], created[4], created[0]])
            #expect(pages == 2)

            let all = try decode(Page<Buffer>.self, try await client.execute(uri: "/buffers?\(Self.v)", method: .get))
            #expect(all.items.count == 7)
            #expect(all.nextLink == nil)
            let zero = try decode(
                Page<Buffer>.self,
                try await client.execute(uri: "/buffers?\(Self.v)&limit=0", method: .get)
            )
            #expect(zero.items.isEmpty)
            try expectError(
                try await client.execute(uri: "/buffers?\(Self.v)&limit=-1", method: .get),
                .badRequest,
                code: "InvalidInput",
                contains: "Limit must be a non-negative integer."
            )
            try expectError(
                try await client.execute(uri: "/buffers?\(Self.v)&_ct=garbage!", method: .get),
                .badRequest,
                code: "InvalidInput",
                contains: "Invalid continuation token."
            )
            let count = try await client.execute(uri: "/buffers/count?\(Self.v)&tag[color]=blue", method: .get)
            #expect(String(buffer: count.body) == "3")
        }
    }

    @Test func putChecksIfMatchAndAcceptsGoSetBody() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            let b = try await create(client, #"{"tags":{"a":"1"}}"#)
            let uri = "/buffers/\(b.id)?\(Self.v)"
            // Body of `tyger buffer set --tag b=2` (unknown eTag property is ignored).
            let body = #"{"eTag":"\#(b.eTag!)","tags":{"a":"1","b":"2"},"expiresAt":null}"#
            let stale = try await client.execute(
                uri: uri,
                method: .put,
                headers: [.ifMatch: "12345"],
                body: ByteBuffer(string: body)
            )
            try expectError(stale, .preconditionFailed, code: "PreconditionFailed", contains: "ETag does not match")

            let ok = try await client.execute(
                uri: uri,
                method: .put,
                headers: [.ifMatch: b.eTag!],
                body: ByteBuffer(string: body)
            )
            #expect(ok.status == .ok)
            let updated = try decode(Buffer.self, ok)
            #expect(updated.tags == ["a": "1", "b": "2"])
            #expect(updated.eTag != b.eTag)
            #expect(ok.headers[.eTag] == updated.eTag)

            let cleared = try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: #"{"tags":null}"#))
            #expect(try decode(Buffer.self, cleared).tags == nil)
            let empty = try await client.execute(uri: uri, method: .put)
            #expect(empty.status == .ok)

            try expectError(
                try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: #"{"id":"other"}"#)),
                .badRequest,
                code: "BadRequest",
                contains: "does not match the buffer ID"
            )
            try expectError(
                try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: "{not json")),
                .badRequest,
                code: "InvalidInput",
                contains: "Error deserializing input"
            )
            try expectError(
                try await client.execute(uri: "/buffers/nope?\(Self.v)", method: .put, body: ByteBuffer(string: "{}")),
                .notFound,
                code: "NotFound",
                contains: "not found"
            )
        }
    }

    @Test func singleDeleteRestorePurgeOverHTTP() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            let b = try await create(client, #"{"tags":{"a":"1"}}"#)
            let item = "/buffers/\(b.id)"
            try expectError(
                try await client.execute(uri: "\(item)/restore?\(Self.v)", method: .post),
                .preconditionFailed,
                code: "PreconditionFailed",
                contains: "Buffer is not soft-deleted"
            )
            let deleted = try await client.execute(uri: "\(item)?\(Self.v)", method: .delete)
            #expect(deleted.status == .ok)
            #expect(try decode(Buffer.self, deleted).isSoftDeleted)
            #expect(String(buffer: deleted.body).contains(#""isSoftDeleted":true"#))
            try expectError(
                try await client.execute(uri: "\(item)?\(Self.v)", method: .delete),
                .preconditionFailed,
                code: "PreconditionFailed",
                contains: "Buffer is already soft-deleted"
            )
            let restored = try await client.execute(uri: "\(item)/restore?\(Self.v)", method: .post)
            #expect(restored.status == .ok)
            #expect(try decode(Buffer.self, restored).isSoftDeleted == false)
            _ = try await client.execute(uri: "\(item)?\(Self.v)&ttl=1.00:00:00", method: .delete)
            let purged = try await client.execute(uri: "\(item)?\(Self.v)&ttl=0&softDeleted=true", method: .delete)
            #expect(purged.status == .ok)
            try expectError(
                try await client.execute(uri: "\(item)?\(Self.v)&ttl=-1", method: .delete),
                .badRequest,
                code: "InvalidInput",
                contains: "ttl must be a valid, non-negative TimeSpan"
            )
            try expectError(
                try await client.execute(uri: "\(item)/restore?\(Self.v)", method: .post),
                .notFound,
                code: "NotFound",
                contains: "not found"
            )
        }
    }

    @Test func bulkDeleteRestorePurgeReturnCounts() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            for i in 0..<4 { try await create(client, #"{"tags":{"job":"j1","i":"\#(i)"}}"#) }
            try await create(client, #"{"tags":{"job":"j2"}}"#)
            func int(_ r: TestResponse) -> Int? { Int(String(buffer: r.body)) }
            let q = "\(Self.v)&tag%5Bjob%5D=j1"
            #expect(int(try await client.execute(uri: "/buffers/count?\(q)&softDeleted=false", method: .get)) == 4)
            #expect(int(try await client.execute(uri: "/buffers?\(q)&excludeTag[i]=0", method: .delete)) == 3)
            #expect(int(try await client.execute(uri: "/buffers/count?\(q)&softDeleted=true", method: .get)) == 3)
            #expect(int(try await client.execute(uri: "/buffers/restore?\(q)&excludeTag[i]=1", method: .post)) == 2)
            #expect(int(try await client.execute(uri: "/buffers?\(q)", method: .delete)) == 3)
            #expect(int(try await client.execute(uri: "/buffers?\(q)&ttl=0&softDeleted=true", method: .delete)) == 4)
            #expect(int(try await client.execute(uri: "/buffers/count?\(Self.v)", method: .get)) == 1)
            try expectError(
                try await client.execute(uri: "/buffers?\(Self.v)&ttl=abc", method: .delete),
                .badRequest,
                code: "InvalidInput",
                contains: "ttl must be a valid, non-negative TimeSpan"
            )
            try expectError(
                try await client.execute(uri: "/buffers?\(Self.v)&softDeleted=yes", method: .delete),
                .badRequest,
                code: "InvalidInput",
                contains: "softDeleted must be true or false"
            )
        }
    }

    @Test func accessAndStorageAccounts() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            let b = try await create(client, #"{"location":"local"}"#)
            let access = try await client.execute(
                uri: "/buffers/\(b.id)/access?\(Self.v)&writeable=true&preferTcp=true&ttl=00:10:00",
                method: .post
            )
            #expect(access.status == .created)
            #expect(
                try decode(BufferAccess.self, access).uri == "memory://buffers/\(b.id)?writeable=true&ttl=600&tcp=true"
            )
            try expectError(
                try await client.execute(uri: "/buffers/\(b.id)/access?\(Self.v)&ttl=02:00:00", method: .post),
                .badRequest,
                code: "InvalidInput",
                contains: "ttl must be between 00:00:30 and 01:00:00"
            )
            try expectError(
                try await client.execute(uri: "/buffers/nothere/access?\(Self.v)", method: .post),
                .notFound,
                code: "NotFound",
                contains: "not found"
            )
            let accounts = try await client.execute(uri: "/buffers/storage-accounts?\(Self.v)", method: .get)
            #expect(accounts.status == .ok)
            #expect(try decode([StorageAccount].self, accounts).map(\.name) == ["local"])
        }
    }

    @Test func storageFailureIsAnEmpty500() async throws {
        let (app, _) = try app()
        try await app.test(.router) { client in
            storage.failNextOperation()
            let response = try await client.execute(
                uri: "/buffers?\(Self.v)",
                method: .post,
                body: ByteBuffer(string: #"{"tags":{"a":"b"}}"#)
            )
            #expect(response.status == .internalServerError)
            #expect(response.body.readableBytes == 0)
        }
    }
}
