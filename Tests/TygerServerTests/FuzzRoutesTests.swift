import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TygerControlPlane
import TygerModel
import TygerRunEngine
import TygerServer
import TygerTestSupport

/// Fuzzing through the whole server stack in process (authentication, error mapping, the control planes with
/// SQLite, the data plane on disk): generated JSON bodies and query strings on every control-plane route, generated
/// blob names, signed-URL queries and ranges on the data plane. Each answer must be a success or a 4xx with the JSON
/// error envelope, never a 5xx; the server must answer a health check at the end.
@Suite(.timeLimit(.minutes(10))) struct FuzzRoutesTests {
    let count = FaultSettings.fuzzIterations

    /// A full server application in router mode with a bearer token.
    private func withServer(
        _ body: @Sendable (any TestClientProtocol, HTTPFields, TygerServerApplication) async throws -> Void
    ) async throws {
        let directory = TemporaryDirectory()
        let dataDirectory = directory.path + "/data"
        let logger = Logger(label: "fuzz")
        let tokens = InMemoryTokenStore()
        let issued = try await tokens.create(name: "fuzz")
        var configuration = TygerServerConfiguration(dataDirectory: dataDirectory)
        configuration.tokenStore = tokens
        configuration.accessLogLevel = .trace
        let repository = try SQLiteBufferRepository(path: directory.path + "/buffers.sqlite")
        let buffers = BuffersControlPlane(repository: repository, logger: logger)
        let store = try SQLiteRunEngineStore(directory: dataDirectory)
        configuration.controlPlane = [buffers, RunsControlPlane(buffers: buffers, store: store, logger: logger)]
        let app = try TygerServerApplication(configuration: configuration)
        let headers: HTTPFields = [.authorization: "Bearer \(issued.token)", .contentType: "application/json"]
        try await Application(router: app.buildRouter()).test(.router) { client in
            try await body(client, headers, app)
        }
        _ = directory
    }

    /// Checks one answer: no 5xx, and a 4xx carries the error envelope.
    private func check(_ response: TestResponse, _ what: @autoclosure () -> String) {
        let status = response.status.code
        #expect(status < 500, "\(what()) -> \(status): \(String(buffer: response.body).prefix(300))")
        if (400..<500).contains(status), response.headers[.contentType]?.contains("json") == true {
            let body = Data(response.body.readableBytesView)
            #expect((try? JSONDecoder().decode(ErrorResponse.self, from: body)) != nil, "\(what()): no error envelope")
        }
    }

    @Test func controlPlaneRoutes() async throws {
        let count = self.count
        try await withServer { client, headers, _ in
            let v = "api-version=1.0"
            // Something for the routes that take an existing ID.
            let created = try await client.execute(
                uri: "/buffers?\(v)",
                method: .post,
                headers: headers,
                body: ByteBuffer(string: "{}")
            )
            let bufferID = try JSONDecoder().decode(Buffer.self, from: Data(created.body.readableBytesView)).id
            let codespec = FuzzTemplates.codespec.json
            let spec = try await client.execute(
                uri: "/codespecs/fuzz?\(v)",
                method: .put,
                headers: headers,
                body: ByteBuffer(string: codespec)
            )
            #expect(spec.status == .created || spec.status == .ok, "\(String(buffer: spec.body))")
            let base = FaultSettings.seed &* 1_000_003 &+ 100
            for i in 0..<count {
                let seed = base &+ UInt64(i)
                var g = FuzzGenerator(seed: seed)
                let method: HTTPRequest.Method
                let path: String
                var body: String?
                switch g.below(12) {
                case 0: (method, path, body) = (.post, "/buffers", g.mutate(FuzzTemplates.buffer).json)
                case 1: (method, path, body) = (.put, "/buffers/\(bufferID)", g.mutate(FuzzTemplates.bufferUpdate).json)
                case 2: (method, path, body) = (.put, "/codespecs/fuzz", g.mutate(FuzzTemplates.codespec).json)
                case 3: (method, path, body) = (.post, "/runs", g.mutate(FuzzTemplates.run).json)
                case 4: (method, path, body) = (.post, "/runs", g.mutate(FuzzTemplates.namedRun).json)
                case 5: (method, path, body) = (.put, "/runs/1", g.mutate(FuzzTemplates.runUpdate).json)
                case 6: (method, path) = (.get, "/buffers")
                case 7: (method, path) = (.get, g.pick(["/runs", "/runs/counts", "/codespecs"]))
                case 8: (method, path) = (.get, "/runs/1/logs")
                case 9: (method, path) = (.post, "/buffers/\(bufferID)/access")
                case 10: (method, path) = (.get, g.pick(["/buffers/count", "/codespecs/fuzz/versions/1"]))
                default: (method, path) = (.delete, "/buffers")
                }
                var query = v
                if body == nil || g.oneIn(4) {
                    var extra = g.near(FuzzTemplates.queryPieces, count: 10)
                    // `logs?follow` waits for the run to end by design: not a hang.
                    extra = extra.replacingOccurrences(of: "follow", with: "x")
                    query += (g.oneIn(2) ? "&" : "") + extra
                }
                if g.oneIn(20) { query = g.randomText(maxLength: 30) }
                let uri =
                    path + "?"
                    + query.replacingOccurrences(of: " ", with: "%20").replacingOccurrences(of: "#", with: "%23")
                let response = try await client.execute(
                    uri: uri,
                    method: method,
                    headers: headers,
                    body: body.map { ByteBuffer(string: $0) }
                )
                check(response, "seed \(seed): \(method) \(uri.prefix(200)) \(body?.prefix(300) ?? "")")
            }
            let health = try await client.execute(uri: "/healthcheck", method: .get, headers: headers)
            #expect(health.status == .ok)
        }
        FaultSettings.report("fuzz control-plane routes: \(count) requests, 0 crashes, 0 hangs")
    }

    @Test func dataPlaneRoutes() async throws {
        let count = self.count
        try await withServer { client, headers, app in
            let container = "fuzzcontainer0000000000000"
            try app.buffers.create(container)
            let signed = try app.issuer.query(
                containerId: container,
                permissions: Set(SignedURLPermission.all),
                ttl: .seconds(3600)
            )
            let base = FaultSettings.seed &* 1_000_003 &+ 200
            for i in 0..<count {
                let seed = base &+ UInt64(i)
                var g = FuzzGenerator(seed: seed)
                var name = ""
                for _ in 0..<(1 + g.below(4)) { name += g.pick(FuzzTemplates.blobNamePieces) }
                name = name.replacingOccurrences(of: "?", with: "%3F").replacingOccurrences(of: "#", with: "%23")
                let query = g.oneIn(3) ? g.near(FuzzTemplates.signedQueryPieces, count: 8) : signed
                let target = g.oneIn(8) ? g.near(["a", "0", "%2e", ".."]) : container
                let uri = "/containers/\(target)/\(name)?\(query)"
                var fields = HTTPFields()
                if g.oneIn(3) {
                    fields[.range] = "bytes=" + g.near(["0", "-", "1", ",", "9223372036854775807", " "], count: 5)
                }
                if g.oneIn(4) {
                    fields[HTTPField.Name("x-ms-meta-" + g.pick(["a", "cumulative_hash_chain", "tyger"]))!] =
                        g.oddString().filter(\.isASCII).filter { $0 != "\n" && $0 != "\r" }
                }
                if g.oneIn(4) { fields[.contentMD5] = g.pick(["", "AAAA", "1B2M2Y8AsgTpgAmY7PhCfg==", "!!"]) }
                let method: HTTPRequest.Method = g.pick([.get, .put, .head, .put])
                let body = method == .put ? ByteBuffer(bytes: Payload.random(count: g.below(3000), seed: seed)) : nil
                let response = try await client.execute(uri: uri, method: method, headers: fields, body: body)
                check(response, "seed \(seed): \(method) \(uri.prefix(300))")
            }
            let health = try await client.execute(uri: "/healthcheck", method: .get, headers: headers)
            #expect(health.status == .ok)
        }
        FaultSettings.report("fuzz data-plane routes: \(count) requests, 0 crashes, 0 hangs")
    }
}
