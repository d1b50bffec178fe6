import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import Testing
import TygerModel
import TygerServer
import TygerStorage
import TygerTestSupport

struct LiveServerTests {
    @Test func tcpRoundTripNeedsATokenOrASignature() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let issued = try await fixture.tokens.create(name: "live")
        let payload = pattern(5 << 20)
        let putURI = try fixture.blobURI("buf1", "00/000", [.createBlob, .readBlob])
        let getURI = try fixture.blobURI("buf1", "00/000", [.readBlob])
        let application = Application(
            router: fixture.app.buildRouter(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await application.test(.live) { client in
            try await client.execute(uri: "/whoami", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(issued.token)"])
            { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "token:live(\(issued.record.id))")
            }
            // Signed data-plane requests need no token; a 5 MiB body streams in and out.
            try await client.execute(
                uri: putURI,
                method: .put,
                headers: [.contentMD5: md5Base64(payload)],
                body: ByteBuffer(bytes: payload)
            ) {
                #expect($0.status == .created)
            }
            try await client.execute(uri: getURI, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentLength] == String(payload.count))
                #expect(Array(buffer: response.body) == payload)
            }
            try await client.execute(uri: getURI, method: .get, headers: [.xMsRange: "bytes=4194300-4194309"]) {
                response in
                #expect(response.status == .partialContent)
                #expect(Array(buffer: response.body) == Array(payload[4_194_300...4_194_309]))
            }
            // Request-Id on every response, also errors.
            try await client.execute(uri: "/containers/buf1/00/000?api-version=1.0&sig=x", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.requestID] != nil)
            }
        }
    }

    @Test func unixSocketIsTrustedOwnerOnlyAndReplacesAStaleSocket() async throws {
        let directory = TemporaryDirectory()
        let dataDirectory = directory.path + "/d"
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let socketPath = dataDirectory + "/api.sock"
        makeStaleSocket(socketPath)

        var configuration = TygerServerConfiguration(dataDirectory: dataDirectory)
        configuration.controlPlane = [EchoControlPlane()]
        configuration.tokenStore = InMemoryTokenStore()
        let (listening, continuation) = AsyncStream.makeStream(of: String.self)
        configuration.onListening = { continuation.yield($0) }
        let app = try TygerServerApplication(configuration: configuration)
        let logger = Logger(label: "test")
        let group = ServiceGroup(services: try app.makeServices(logger: logger), logger: logger)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = listening.makeAsyncIterator()
            #expect(await iterator.next() == "http+unix://\(socketPath):")

            let attributes = try FileManager.default.attributesOfItem(atPath: socketPath)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            // A second server on the same data directory refuses to start.
            #expect(throws: TygerServerError.self) {
                _ = try TygerServerApplication(configuration: configuration).makeServices(logger: logger)
            }

            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                let url = try #require(URL(httpURLWithSocketPath: socketPath, uri: "/whoami"))
                let response = try await client.execute(
                    HTTPClientRequest(url: url.absoluteString),
                    timeout: .seconds(10)
                )
                #expect(response.status == .ok)
                #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)) == "unix-socket")
                #expect(response.headers["Request-Id"].first != nil)

                let metadataURL = try #require(URL(httpURLWithSocketPath: socketPath, uri: "/metadata"))
                let metadata = try await client.execute(
                    HTTPClientRequest(url: metadataURL.absoluteString),
                    timeout: .seconds(10)
                )
                let decoded = try JSONDecoder().decode(
                    ServiceMetadata.self,
                    from: Data(Array(buffer: try await metadata.body.collect(upTo: 1 << 20)))
                )
                #expect(decoded.dataPlaneEndpoint == "http+unix://\(socketPath):")

                // An access URL for the socket works over the socket.
                let accessURL = try app.issuer.accessURL(
                    containerId: "sockbuf",
                    writeable: true,
                    endpoint: app.endpoints.unixSocket!
                )
                try app.buffers.create("sockbuf")
                let query = String(accessURL.split(separator: "?")[1])
                let putURL = try #require(
                    URL(httpURLWithSocketPath: socketPath, uri: "/containers/sockbuf/00/000?" + query)
                )
                var put = HTTPClientRequest(url: putURL.absoluteString)
                put.method = .PUT
                put.body = .bytes(ByteBuffer(string: "over the socket"))
                let putResponse = try await client.execute(put, timeout: .seconds(10))
                #expect(putResponse.status == .created)
                let stored = try await app.buffers.store(for: "sockbuf").get("00/000")
                #expect(stored.map { String(decoding: $0.bytes, as: UTF8.self) } == "over the socket")
            } catch {
                try await client.shutdown()
                await group.triggerGracefulShutdown()
                throw error
            }
            try await client.shutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Leaves a socket file nobody listens on, as a killed server would.
    private func makeStaleSocket(_ path: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        precondition(rc == 0, "bind \(path) failed")
        close(fd)
    }
}

struct TLSListenerTests {
    @Test func httpsListenerServesTheDataPlaneAndTokens() async throws {
        let directory = TemporaryDirectory()
        let cert = directory.path + "/cert.pem"
        let key = directory.path + "/key.pem"
        let openssl = try await run(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key,
                "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
        )
        try #require(openssl.status == 0, "openssl: \(openssl.stderr)")

        var configuration = TygerServerConfiguration(dataDirectory: directory.path + "/data")
        configuration.unixSocket = false
        configuration.tcp = TCPListenerConfiguration(
            host: "127.0.0.1",
            port: 0,
            tlsCertificatePath: cert,
            tlsKeyPath: key
        )
        let tokens = InMemoryTokenStore()
        configuration.tokenStore = tokens
        configuration.controlPlane = [EchoControlPlane()]
        let (listening, continuation) = AsyncStream.makeStream(of: String.self)
        configuration.onListening = { continuation.yield($0) }
        let app = try TygerServerApplication(configuration: configuration)
        let logger = Logger(label: "test")
        let group = ServiceGroup(services: try app.makeServices(logger: logger), logger: logger)
        let issued = try await tokens.create(name: "tls")

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = listening.makeAsyncIterator()
            let endpoint = try #require(await iterator.next())
            #expect(endpoint.hasPrefix("https://127.0.0.1:"))
            #expect(app.endpoints.tcp == endpoint)

            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(cert)
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            do {
                let anonymous = try await client.execute(
                    HTTPClientRequest(url: endpoint + "/whoami"),
                    timeout: .seconds(10)
                )
                #expect(anonymous.status == .unauthorized)
                var request = HTTPClientRequest(url: endpoint + "/buffers/tlsbuf/access")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(issued.token)")
                let access = try await client.execute(request, timeout: .seconds(10))
                #expect(access.status == .ok)
                let url = String(buffer: try await access.body.collect(upTo: 1 << 16))
                #expect(url.hasPrefix(endpoint + "/containers/tlsbuf?api-version=1.0&sv=0.1.0&sp=cr&"))
                // The access URL works as is over HTTPS, without a token.
                var put = HTTPClientRequest(
                    url: url.replacingOccurrences(of: "/containers/tlsbuf?", with: "/containers/tlsbuf/00/000?")
                )
                put.method = .PUT
                put.body = .bytes(ByteBuffer(string: "secret data"))
                #expect(try await client.execute(put, timeout: .seconds(10)).status == .created)
                let get = try await client.execute(
                    HTTPClientRequest(
                        url: url.replacingOccurrences(of: "/containers/tlsbuf?", with: "/containers/tlsbuf/00/000?")
                    ),
                    timeout: .seconds(10)
                )
                #expect(String(buffer: try await get.body.collect(upTo: 1 << 16)) == "secret data")
            } catch {
                try await client.shutdown()
                await group.triggerGracefulShutdown()
                throw error
            }
            try await client.shutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
