import Foundation
import Testing
import TygerCore
import TygerServer
import TygerStorage
import TygerTestSupport

/// Malformed HTTP and a full disk get clear answers, and the server keeps answering.
@Suite(.serialized) struct ProtocolErrorTests {
    static let healthCheck = "GET /healthcheck HTTP/1.1\r\nHost: localhost\r\n\r\n"

    @Test(arguments: [
        "zz\r\nhello\r\n0\r\n\r\n",  // a chunk size that is not hex
        "5\r\nhelloXX0\r\n\r\n",  // a chunk without its CRLF
        "-5\r\nhello\r\n0\r\n\r\n",  // a negative size
        "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",  // a size past any integer
    ])
    func badChunkedEncodingIsA400(body: String) async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { app, port in
            try app.buffers.create("chunky")
            let query = try app.issuer.query(containerId: "chunky", permissions: [.createBlob], ttl: .seconds(600))
            let connection = try RawTCPConnection(port: port)
            let response = await connection.request(
                "PUT /containers/chunky/00/000?\(query) HTTP/1.1\r\nHost: localhost\r\nx-ms-blob-type: BlockBlob\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n" + body
            )
            #expect(response.hasPrefix("HTTP/1.1 400"), "\(response)")
            #expect(try app.buffers.store(for: "chunky").openBlob("00/000") == nil)
            // The same on a route that ignores its body.
            let other = try RawTCPConnection(port: port)
            let anonymous = await other.request(
                "POST /healthcheck HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + body
            )
            #expect(anonymous.hasPrefix("HTTP/1.1 4"), "\(anonymous)")
            #expect(!anonymous.hasPrefix("HTTP/1.1 500"))
            let fresh = try RawTCPConnection(port: port)
            #expect(await fresh.request(Self.healthCheck).hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test func aFullDiskIsA507AndMarksTheBufferFailed() async throws {
        let directory = TemporaryDirectory()
        let mount = directory.path + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try await run("/usr/bin/env", ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        // Unmounted after the body whatever its outcome (a `defer` cannot await).
        do {
            try await withLiveTCPServer(dataDirectory: mount + "/data") { app, port in
                try app.buffers.create("full")
                let query = try app.issuer.query(
                    containerId: "full",
                    permissions: [.createBlob, .readBlob],
                    ttl: .seconds(600)
                )
                let blob = [UInt8](repeating: 7, count: 3 << 20)
                var statuses: [String] = []
                var lastResponse = ""
                for index in 0..<4 {
                    let connection = try RawTCPConnection(port: port)
                    await connection.send(
                        "PUT /containers/full/00/00\(index)?\(query) HTTP/1.1\r\nHost: localhost\r\n"
                            + "x-ms-blob-type: BlockBlob\r\nContent-Length: \(blob.count)\r\n\r\n"
                    )
                    await connection.send(blob)
                    lastResponse = await connection.read(until: "\r\n\r\n")
                    if !lastResponse.hasPrefix("HTTP/1.1 201") && !lastResponse.contains("</Error>") {
                        lastResponse += await connection.read(until: "</Error>", timeout: .seconds(30))
                    }
                    statuses.append(String(lastResponse.prefix(12)))
                    if !lastResponse.hasPrefix("HTTP/1.1 201") { break }
                }
                #expect(statuses.first == "HTTP/1.1 201")
                #expect(statuses.last == "HTTP/1.1 507", "\(statuses)")
                #expect(lastResponse.contains("x-ms-error-code: InsufficientStorage"))
                #expect(lastResponse.contains("disk is full"))
                let end = try #require(try await app.buffers.store(for: "full").get(BufferBlobNames.end))
                #expect(BufferEndMetadata.decode(Array(end.bytes)) == .failed)
                let fresh = try RawTCPConnection(port: port)
                #expect(await fresh.request(Self.healthCheck).hasPrefix("HTTP/1.1 200"))
            }
        } catch {
            _ = try? await run("/usr/bin/env", ["umount", "-l", mount])
            throw error
        }
        _ = try? await run("/usr/bin/env", ["umount", "-l", mount])
    }
}
