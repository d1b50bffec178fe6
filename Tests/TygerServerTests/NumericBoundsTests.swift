import Foundation
import NIOHTTP1
import Testing
import TygerModel
import TygerServer
import TygerTestSupport

private let v = "api-version=1.0"

/// Every number a request carries is bounded: huge, negative and non-finite values are 400s that name the field,
/// never a trap, and the server answers afterwards. One table per family, through the real HTTP server.
struct NumericBoundsTests {
    static let huge = ["99999999999999999999999", "-99999999999999999999999", "1e300", "-1", "NaN", "Infinity"]

    /// Query numbers: `limit` past `Int.max` is capped (upstream caps), `tailLines`, `ttl` and `_ct` are refused.
    @Test func queryNumbers() async throws {
        try await LiveControlPlane.run { server in
            let codespec = #"{"kind":"job","image":"ubuntu","command":["true"]}"#
            #expect(try await server.send(.PUT, "/codespecs/noop?\(v)", body: codespec).status == .created)
            let run = try await server.send(.POST, "/runs?\(v)", body: #"{"job":{"codespec":"noop"}}"#)
            #expect(run.status == .created)
            let id = try run.decode(Run.self).id ?? 0
            let capped = try await server.send(.GET, "/buffers?\(v)&limit=99999999999999999999999")
            #expect(capped.status == .ok)
            for value in Self.huge where value.hasPrefix("-") || !value.hasPrefix("9") {
                let list = try await server.send(.GET, "/buffers?\(v)&limit=\(value)")
                #expect(list.status == .badRequest, "limit=\(value)")
                #expect(list.body.contains("Limit"), "limit=\(value): \(list.body)")
            }
            for value in Self.huge where value != "-1" {
                let logs = try await server.send(.GET, "/runs/\(id)/logs?\(v)&tailLines=\(value)")
                #expect(logs.status == .badRequest, "tailLines=\(value)")
                #expect(logs.body.contains("tailLines"), "tailLines=\(value): \(logs.body)")
            }
            for value in Self.huge + ["10675200", "10675199.23:59:60", "99999999999999999999.00:00"] {
                let delete = try await server.send(.DELETE, "/buffers?\(v)&ttl=\(value)")
                #expect(delete.status == .badRequest, "ttl=\(value)")
                #expect(delete.body.contains("ttl"), "ttl=\(value): \(delete.body)")
            }
            // The largest TimeSpan upstream accepts is accepted here too, and far-future expiries do not trap.
            let created = try await server.send(.POST, "/buffers?\(v)", body: "{}")
            let bufferID = try created.decode(Buffer.self).id ?? ""
            let farFuture = try await server.send(.DELETE, "/buffers/\(bufferID)?\(v)&ttl=10675199.23:59:59.9999999")
            #expect(farFuture.status == .ok, "\(farFuture.body)")
            #expect(try await server.send(.GET, "/buffers/\(bufferID)?\(v)&softDeleted=true").status == .ok)
            #expect(try await server.send(.GET, "/healthcheck").status == .ok)
        }
    }

    /// JSON body numbers of runs and codespecs.
    @Test func bodyNumbers() async throws {
        try await LiveControlPlane.run { server in
            let codespec = #"{"kind":"job","image":"ubuntu","command":["true"]}"#
            #expect(try await server.send(.PUT, "/codespecs/noop?\(v)", body: codespec).status == .created)
            for value in Self.huge where value != "NaN" && value != "Infinity" {
                for (field, body) in [
                    ("timeoutSeconds", #"{"job":{"codespec":"noop"},"timeoutSeconds":\#(value)}"#),
                    ("replicas", #"{"job":{"codespec":"noop","replicas":\#(value)}}"#),
                ] {
                    let answer = try await server.send(.POST, "/runs?\(v)", body: body)
                    #expect(answer.status == .badRequest, "\(field)=\(value)")
                    #expect(answer.body.contains(field), "\(field)=\(value): \(answer.body)")
                }
                for (field, body) in [
                    ("maxReplicas", #"{"kind":"job","image":"u","maxReplicas":\#(value)}"#),
                    ("port", #"{"kind":"worker","image":"u","endpoints":{"e":\#(value)}}"#),
                ] {
                    let answer = try await server.send(.PUT, "/codespecs/bad?\(v)", body: body)
                    #expect(answer.status == .badRequest, "\(field)=\(value)")
                    #expect(
                        answer.body.contains(field) || answer.body.contains("endpoints"),
                        "\(field)=\(value): \(answer.body)"
                    )
                }
            }
            for value in ["99999999999.00:00:00", "-01:00:00", "1e300", "NaN", "25:00:00"] {
                for (field, body) in [
                    ("job.bufferTtl", #"{"job":{"codespec":"noop","bufferTtl":"\#(value)"}}"#),
                    ("bufferAccessTtl", #"{"job":{"codespec":"noop"},"bufferAccessTtl":"\#(value)"}"#),
                ] {
                    let answer = try await server.send(.POST, "/runs?\(v)", body: body)
                    #expect(answer.status == .badRequest, "\(field)=\(value)")
                    #expect(answer.body.contains(field), "\(field)=\(value): \(answer.body)")
                }
            }
            for quantity in ["1e99999999999999999999", "1e400", "99999999999999999999999999Ei", "-1e300"] {
                for field in ["cpu", "memory"] {
                    let body = #"{"kind":"job","image":"u","resources":{"requests":{"\#(field)":"\#(quantity)"}}}"#
                    let answer = try await server.send(.PUT, "/codespecs/bad?\(v)", body: body)
                    #expect(answer.status == .badRequest, "\(field)=\(quantity)")
                    #expect(answer.body.contains(field), "\(field)=\(quantity): \(answer.body)")
                }
            }
            #expect(try await server.send(.GET, "/healthcheck").status == .ok)
        }
    }

    /// Data-plane headers: `x-ms-range`/`Range` past any integer and `Content-Length` past the blob limit.
    @Test func dataPlaneHeaders() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { app, port in
            try app.buffers.create("ranges")
            let query = try app.issuer.query(
                containerId: "ranges",
                permissions: [.createBlob, .readBlob],
                ttl: .seconds(600)
            )
            let put = try RawTCPConnection(port: port)
            #expect(
                await put.request(
                    "PUT /containers/ranges/00/000?\(query) HTTP/1.1\r\nHost: l\r\nx-ms-blob-type: BlockBlob\r\n"
                        + "Content-Length: 5\r\n\r\nhello"
                ).hasPrefix("HTTP/1.1 201")
            )
            for range in [
                "bytes=0-99999999999999999999999", "bytes=-99999999999999999999999",
                "bytes=99999999999999999999999-", "bytes=9223372036854775807-",
            ] {
                let get = try RawTCPConnection(port: port)
                let answer = await get.request(
                    "GET /containers/ranges/00/000?\(query) HTTP/1.1\r\nHost: l\r\nx-ms-range: \(range)\r\n\r\n"
                )
                #expect(
                    answer.hasPrefix("HTTP/1.1 200") || answer.hasPrefix("HTTP/1.1 206")
                        || answer.hasPrefix("HTTP/1.1 4"),
                    "\(range): \(answer)"
                )
            }
            for length in ["99999999999999999999999", "9223372036854775807", "-1"] {
                let big = try RawTCPConnection(port: port)
                let answer = await big.request(
                    "PUT /containers/ranges/00/\(length.count)?\(query) HTTP/1.1\r\nHost: l\r\n"
                        + "x-ms-blob-type: BlockBlob\r\nContent-Length: \(length)\r\n\r\n"
                )
                #expect(answer.hasPrefix("HTTP/1.1 4"), "Content-Length \(length): \(answer)")
            }
            let fresh = try RawTCPConnection(port: port)
            #expect(await fresh.request("GET /healthcheck HTTP/1.1\r\nHost: l\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        }
    }
}
