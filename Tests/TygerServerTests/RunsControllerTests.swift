import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TygerModel
import TygerRunEngine
import TygerServer
import TygerStorage
import TygerTestSupport

/// An engine over a temporary directory with file-backed buffers.
struct Harness {
    let directory = TemporaryDirectory()
    let engine: RunEngine

    init() throws {
        let buffers = directory.path + "/buffers"
        try FileManager.default.createDirectory(atPath: buffers, withIntermediateDirectories: true)
        var configuration = RunEngineConfiguration(dataDirectory: directory.path + "/data")
        configuration.terminationGrace = .seconds(5)
        configuration.pendingSweepInterval = .milliseconds(200)
        engine = RunEngine(
            configuration: configuration,
            codespecs: InMemoryCodespecRepository(),
            runs: InMemoryRunRepository(),
            blobStore: { id in FileBlobStore(directory: buffers + "/" + id) },
            createBuffer: { _, _ in
                let id = UUID().uuidString.lowercased()
                try await FileBlobStore(directory: buffers + "/" + id).createContainer()
                return id
            },
            logger: Logger(label: "test")
        )
    }
}

/// Runs `body` while the engine service runs.
func withRunningEngine<R: Sendable>(
    _ harness: Harness,
    _ body: @Sendable (Harness) async throws -> R
) async throws -> R {
    try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask {
            try await harness.engine.run()
            return nil
        }
        do {
            let result = try await body(harness)
            group.cancelAll()
            while let _ = try await group.next() {}
            return result
        } catch {
            group.cancelAll()
            while let _ = try? await group.next() {}
            throw error
        }
    }
}

/// The `/codespecs` and `/runs` routes, moved here with their controllers from the run engine's HTTP module.
struct RunsControllerTests {
    func app(_ h: Harness) -> some ApplicationProtocol {
        let router = controllerRouter { router in
            CodespecsController(engine: h.engine).addRoutes(to: router.group())
            RunsController(engine: h.engine).addRoutes(to: router.group())
        }
        return Application(router: router)
    }

    @Test func codespecRoutes() async throws {
        let h = try Harness()
        try await app(h).test(.router) { client in
            let body = #"{"kind":"job","image":"ubuntu","command":["echo"],"buffers":{"inputs":["a","b"]}}"#
            try await client.execute(uri: "/codespecs/hello", method: .put, body: ByteBuffer(string: body)) { r in
                #expect(r.status == .created)
                #expect(r.headers[.location] == "/codespecs/hello/versions/1")
            }
            let reordered = #"{"kind":"job","image":"ubuntu","command":["echo"],"buffers":{"inputs":["b","a"]}}"#
            try await client.execute(uri: "/codespecs/hello", method: .put, body: ByteBuffer(string: reordered)) { r in
                // Same spec: the existing version 1 comes back, and version 1 answers 201 as upstream does.
                #expect(r.status == .created)
                #expect(r.headers[.location] == "/codespecs/hello/versions/1")
            }
            let changed = #"{"kind":"job","image":"ubuntu","command":["echo","2"]}"#
            try await client.execute(uri: "/codespecs/hello", method: .put, body: ByteBuffer(string: changed)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.location] == "/codespecs/hello/versions/2")
            }
            try await client.execute(uri: "/codespecs/hello", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("\"version\":2"))
            }
            try await client.execute(uri: "/codespecs/hello/versions/1", method: .get) { r in
                #expect(String(buffer: r.body).contains("\"inputs\":[\"a\",\"b\"]"))
            }
            try await client.execute(uri: "/codespecs/hello/versions/x", method: .get) { r in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/codespecs/Bad", method: .put, body: ByteBuffer(string: changed)) { r in
                #expect(r.status == .badRequest)
                #expect(
                    String(buffer: r.body).contains(
                        #"{"error":{"code":"InvalidInput","message":"codespec names must contain only"#
                    )
                )
            }
            try await client.execute(uri: "/codespecs/x", method: .put, body: ByteBuffer(string: #"{"image":"u"}"#)) {
                r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("Missing discriminator property 'kind'."))
            }
            try await client.execute(
                uri: "/codespecs/x",
                method: .put,
                body: ByteBuffer(string: #"{"kind":"job","image":"u","resources":{"requests":{"cpu":"abc"}}}"#)
            ) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("quantities must match"))
            }
            for name in ["b1", "b2"] {
                try await client.execute(uri: "/codespecs/\(name)", method: .put, body: ByteBuffer(string: changed)) {
                    _ in
                }
            }
            try await client.execute(uri: "/codespecs?limit=2", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("\"name\":\"b1\"") && text.contains("\"name\":\"b2\"") && !text.contains("hello"))
                #expect(text.contains("\"nextLink\":\"/codespecs?limit=2&_ct="))
            }
            try await client.execute(uri: "/codespecs?prefix=he", method: .get) { r in
                #expect(String(buffer: r.body).contains("\"name\":\"hello\""))
                #expect(!String(buffer: r.body).contains("nextLink"))
            }
            try await client.execute(uri: "/codespecs/missing", method: .get) { r in
                #expect(r.status == .notFound)
                #expect(
                    String(buffer: r.body) == #"{"error":{"code":"NotFound","message":"The resource was not found"}}"#
                )
            }
        }
    }

    @Test func runRoutes() async throws {
        try await withRunningEngine(try Harness()) { h in
            try await app(h).test(.router) { client in
                let body =
                    #"{"job":{"codespec":{"kind":"job","image":"u","command":["bash","-c","echo one; echo two; echo out > \"$OUT_PIPE\""],"buffers":{"outputs":["out"]}}},"tags":{"t":"1"},"createdAt":"0001-01-01T00:00:00Z"}"#
                var id = ""
                try await client.execute(uri: "/runs", method: .post, body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .created)
                    id = String(r.headers[.location]?.split(separator: "/").last ?? "")
                    #expect(String(buffer: r.body).contains("\"status\":\"Pending\""))
                }
                try await client.execute(uri: "/runs/\(id)?watch=true", method: .get) { r in
                    #expect(r.status == .ok)
                    let lines = String(buffer: r.body).split(separator: "\n")
                    #expect(lines.count >= 1)
                    #expect(lines.last?.contains("\"status\":\"Succeeded\"") == true)
                }
                try await client.execute(uri: "/runs/\(id)/logs", method: .get) { r in
                    #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
                    #expect(String(buffer: r.body) == "one\ntwo\n")
                }
                try await client.execute(uri: "/runs/\(id)/logs?tailLines=1&timestamps=true", method: .get) { r in
                    let text = String(buffer: r.body)
                    #expect(text.hasSuffix(" two\n") && text.split(separator: "\n").count == 1)
                }
                try await client.execute(uri: "/runs?status=succeeded&tag[t]=1", method: .get) { r in
                    #expect(String(buffer: r.body).contains("\"id\":\(id)"))
                }
                try await client.execute(uri: "/runs?status=bogus", method: .get) { r in
                    #expect(r.status == .badRequest)
                    #expect(String(buffer: r.body).contains("Invalid status: bogus"))
                }
                try await client.execute(uri: "/runs/counts", method: .get) { r in
                    #expect(String(buffer: r.body) == "{\"succeeded\":1}\n")
                }
                try await client.execute(uri: "/runs/\(id)/cancel", method: .post) { r in
                    #expect(r.status == .accepted)
                    #expect(String(buffer: r.body).contains("\"status\":\"Succeeded\""))
                }
                try await client.execute(uri: "/runs/999", method: .get) { r in #expect(r.status == .notFound) }
                try await client.execute(uri: "/runs/abc/logs", method: .get) { r in #expect(r.status == .notFound) }
                try await client.execute(
                    uri: "/runs",
                    method: .post,
                    body: ByteBuffer(string: #"{"job":{"codespec":"nope"}}"#)
                ) { r in
                    #expect(r.status == .badRequest)
                    #expect(String(buffer: r.body).contains("The codespec 'nope' was not found"))
                }
                try await client.execute(
                    uri: "/runs",
                    method: .post,
                    body: ByteBuffer(string: #"{"job":{"codespec":"a"},"bogus":1}"#)
                ) { r in
                    #expect(r.status == .badRequest)
                    #expect(String(buffer: r.body).contains("unknown field 'bogus'"))
                }
            }
        }
    }

    /// `PUT /runs/{id}` (`tyger run set`): tags replaced, `If-Match` checked, `ETag` returned; upstream's empty 404
    /// and 412 bodies.
    @Test func runUpdateSetsTagsWithIfMatch() async throws {
        let h = try Harness()
        try await app(h).test(.router) { client in
            let body = #"{"job":{"codespec":{"kind":"job","image":"u","command":["true"]}},"tags":{"a":"1"}}"#
            let created = try await client.execute(uri: "/runs", method: .post, body: ByteBuffer(string: body))
            #expect(created.status == .created)
            let run = try TygerJSON.makeDecoder().decode(Run.self, from: Data(created.body.readableBytesView))
            let id = try #require(run.id)
            let eTag = try #require(run.eTag)

            let stale = try await client.execute(
                uri: "/runs/\(id)",
                method: .put,
                headers: [.ifMatch: "\"12345\""],
                body: ByteBuffer(string: #"{"tags":{"b":"2"}}"#)
            )
            #expect(stale.status == .preconditionFailed)
            #expect(stale.body.readableBytes == 0)

            // The body of `tyger run set` (an `eTag` property is ignored, as upstream's RunUpdate is not strict).
            let updated = try await client.execute(
                uri: "/runs/\(id)",
                method: .put,
                headers: [.ifMatch: eTag],
                body: ByteBuffer(string: #"{"eTag":"\#(eTag)","tags":{"a":"1","b":"2"}}"#)
            )
            #expect(updated.status == .ok, "\(String(buffer: updated.body))")
            let after = try TygerJSON.makeDecoder().decode(Run.self, from: Data(updated.body.readableBytesView))
            #expect(after.tags == ["a": "1", "b": "2"])
            #expect(after.eTag != eTag)
            #expect(updated.headers[.eTag] == after.eTag)

            let cleared = try await client.execute(
                uri: "/runs/\(id)",
                method: .put,
                body: ByteBuffer(string: #"{"tags":null}"#)
            )
            #expect(cleared.status == .ok)
            let clearedRun = try TygerJSON.makeDecoder().decode(Run.self, from: Data(cleared.body.readableBytesView))
            #expect(clearedRun.tags == nil)

            let mismatch = try await client.execute(
                uri: "/runs/\(id)",
                method: .put,
                body: ByteBuffer(string: #"{"id":\#(id + 1)}"#)
            )
            #expect(mismatch.status == .badRequest)
            #expect(String(buffer: mismatch.body).contains("does not match"))
            let badTag = try await client.execute(
                uri: "/runs/\(id)",
                method: .put,
                body: ByteBuffer(string: #"{"tags":{"bad key":"v"}}"#)
            )
            #expect(badTag.status == .badRequest)
            #expect(String(buffer: badTag.body).contains("InvalidInput"))

            let missing = try await client.execute(
                uri: "/runs/\(id + 100)",
                method: .put,
                body: ByteBuffer(string: "{}")
            )
            #expect(missing.status == .notFound)
            #expect(missing.body.readableBytes == 0)
        }
    }

    /// A retried `POST /runs` with the same `Idempotency-Key` returns the first run.
    @Test func runCreateHonoursIdempotencyKey() async throws {
        let h = try Harness()
        try await app(h).test(.router) { client in
            let body = ByteBuffer(string: #"{"job":{"codespec":{"kind":"job","image":"u","command":["true"]}}}"#)
            func create(_ key: String?) async throws -> Int64? {
                let headers: HTTPFields = key.map { [.idempotency: $0] } ?? [:]
                let response = try await client.execute(uri: "/runs", method: .post, headers: headers, body: body)
                #expect(response.status == .created)
                return try TygerJSON.makeDecoder().decode(Run.self, from: Data(response.body.readableBytesView)).id
            }
            let first = try await create("key-1")
            #expect(try await create("key-1") == first)
            #expect(try await create("key-2") != first)
            #expect(try await create(nil) != first)
        }
    }
}

extension HTTPField.Name {
    static let idempotency = HTTPField.Name("Idempotency-Key")!
}
