import Foundation
import NIOCore
import Testing
import TygerServer
import TygerTestSupport

/// The TCP listener's connection limits, against a live server on 127.0.0.1: held connections from 127.0.0.2 must
/// not starve health checks and authenticated clients from 127.0.0.1, and idle or half-sent connections are closed.
/// Bounds are generous: they separate "closed by the limit" from "never closed", not fast from slow.
@Suite(.serialized) struct ConnectionLimitsTests {
    static let healthCheck = "GET /healthcheck HTTP/1.1\r\nHost: localhost\r\n\r\n"

    /// How many of `connections` the server has not closed, waiting (up to a minute) for closes in flight until at
    /// most `limit` remain.
    static func stillOpen(_ connections: [RawTCPConnection], atMost limit: Int) async -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        var open = connections
        while true {
            var remaining: [RawTCPConnection] = []
            for connection in open where await !connection.isClosed() { remaining.append(connection) }
            open = remaining
            if open.count <= limit || ContinuousClock.now >= deadline { return open.count }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    static func whoami(_ token: String) -> String {
        "GET /whoami HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n\r\n"
    }

    @Test func connectionsHeldByOneSourceDoNotStarveOthers() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.maxConnections = 64
            configuration.connectionLimits.maxUnauthenticatedPerSource = 16
            // Long timeouts: only the budget and the cap may close connections here.
            configuration.connectionLimits.idleTimeout = .seconds(600)
            configuration.connectionLimits.headerTimeout = .seconds(600)
        } _: { app, port in
            let issued = try await app.tokens.create(name: "limits")
            // An authenticated keep-alive connection from 127.0.0.1, opened before the flood.
            let authenticated = try RawTCPConnection(port: port)
            #expect(await authenticated.request(Self.whoami(issued.token)).hasPrefix("HTTP/1.1 200"))

            // 100 idle connections and 100 with a partial request head, all from 127.0.0.2.
            var held: [RawTCPConnection] = []
            for index in 0..<200 {
                let connection = try RawTCPConnection(port: port, source: "127.0.0.2")
                if index % 2 == 1 { await connection.send("GET /healthcheck HTTP/1.1\r\nHost: local") }
                held.append(connection)
            }

            // 127.0.0.1 is still answered promptly: a health check on a new connection, and a token request on a
            // new connection and on the one opened before.
            for _ in 0..<5 {
                let fresh = try RawTCPConnection(port: port)
                #expect(await fresh.request(Self.healthCheck, timeout: .seconds(30)).hasPrefix("HTTP/1.1 200"))
            }
            let second = try RawTCPConnection(port: port)
            #expect(await second.request(Self.whoami(issued.token), timeout: .seconds(30)).hasPrefix("HTTP/1.1 200"))
            #expect(
                await authenticated.request(Self.whoami(issued.token), timeout: .seconds(30)).hasPrefix("HTTP/1.1 200")
            )

            // 127.0.0.2 keeps at most its budget: the others were closed by the server.
            let open = await Self.stillOpen(held, atMost: 16)
            #expect(open <= 16, "127.0.0.2 still holds \(open) connections")
            #expect(app.connections.openCount <= 64)
        }
    }

    @Test func theCapClosesUnauthenticatedConnectionsFirst() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.maxConnections = 8
            configuration.connectionLimits.maxUnauthenticatedPerSource = 1000
            configuration.connectionLimits.idleTimeout = .seconds(600)
            configuration.connectionLimits.headerTimeout = .seconds(600)
        } _: { app, port in
            let issued = try await app.tokens.create(name: "cap")
            let authenticated = try RawTCPConnection(port: port)
            #expect(await authenticated.request(Self.whoami(issued.token)).hasPrefix("HTTP/1.1 200"))
            var held: [RawTCPConnection] = []
            for _ in 0..<40 { held.append(try RawTCPConnection(port: port, source: "127.0.0.2")) }
            let fresh = try RawTCPConnection(port: port)
            #expect(await fresh.request(Self.healthCheck, timeout: .seconds(30)).hasPrefix("HTTP/1.1 200"))
            // The authenticated connection survived the flood.
            #expect(
                await authenticated.request(Self.whoami(issued.token), timeout: .seconds(30)).hasPrefix("HTTP/1.1 200")
            )
            let open = await Self.stillOpen(held, atMost: 8)
            #expect(open <= 8, "\(open) of 40 flood connections still open")
            #expect(app.connections.openCount <= 8)
        }
    }

    @Test func atTheCapWithEveryConnectionAuthenticatedNewOnesAreClosed() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.maxConnections = 2
            configuration.connectionLimits.idleTimeout = .seconds(600)
            configuration.connectionLimits.headerTimeout = .seconds(600)
        } _: { app, port in
            let issued = try await app.tokens.create(name: "full")
            let first = try RawTCPConnection(port: port)
            var second: RawTCPConnection? = try RawTCPConnection(port: port)
            #expect(await first.request(Self.whoami(issued.token)).hasPrefix("HTTP/1.1 200"))
            #expect(await second!.request(Self.whoami(issued.token)).hasPrefix("HTTP/1.1 200"))
            let refused = try RawTCPConnection(port: port)
            #expect(await refused.isClosed(within: .seconds(60)))
            // The server keeps serving the admitted connections, and admits again once one closes.
            #expect(await first.request(Self.whoami(issued.token)).hasPrefix("HTTP/1.1 200"))
            #expect(
                await second!.request("GET /healthcheck HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
                    .hasPrefix("HTTP/1.1 200")
            )
            #expect(await second!.isClosed(within: .seconds(60)))
            second = nil  // the server half-closed it; the connection ends when the client closes too
            let deadline = ContinuousClock.now + .seconds(60)
            var answered = false
            while !answered, ContinuousClock.now < deadline {
                let again = try RawTCPConnection(port: port)
                answered = await again.request(Self.healthCheck, timeout: .seconds(5)).hasPrefix("HTTP/1.1 200")
            }
            #expect(answered)
        }
    }

    /// A data-plane request with a valid signature authenticates its connection, also when its answer is an error
    /// (a reader asking for a blob not written yet gets 404): a busy client's later connections from the same address
    /// must not close it in the middle of its next request.
    @Test func aSignedRequestAnsweredWithAnErrorAuthenticatesItsConnection() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.maxUnauthenticatedPerSource = 4
            configuration.connectionLimits.idleTimeout = .seconds(600)
            configuration.connectionLimits.headerTimeout = .seconds(600)
        } _: { app, port in
            let url = try app.issuer.accessURL(
                containerId: "nosuchbuffer",
                writeable: false,
                endpoint: "http://127.0.0.1:\(port)"
            )
            let query = String(url[url.firstIndex(of: "?")!...])
            let get =
                "GET /containers/nosuchbuffer/00/000\(query) HTTP/1.1\r\nHost: l\r\nx-ms-version: 2021-08-06\r\n\r\n"
            let signed = try RawTCPConnection(port: port)
            #expect(await signed.request(get).hasPrefix("HTTP/1.1 404"))
            // Ten more connections from the same address, none sending anything: six over the budget.
            var held: [RawTCPConnection] = []
            for _ in 0..<10 { held.append(try RawTCPConnection(port: port)) }
            let open = await Self.stillOpen(held, atMost: 4)
            #expect(open <= 4, "\(open) of 10 silent connections still open")
            #expect(await signed.request(get, timeout: .seconds(30)).hasPrefix("HTTP/1.1 404"))
        }
    }

    @Test func silentAndSlowRequestHeadsAreClosedByTheHeaderTimeout() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.idleTimeout = .seconds(600)
            configuration.connectionLimits.headerTimeout = .seconds(1)
        } _: { _, port in
            // Silent since the accept.
            let silent = try RawTCPConnection(port: port)
            // A head trickled one byte at a time never completes; the trickle does not extend the deadline.
            let trickle = try RawTCPConnection(port: port)
            // A kept-alive connection that starts a second request head and stops.
            let keptAlive = try RawTCPConnection(port: port)
            #expect(await keptAlive.request(Self.healthCheck).hasPrefix("HTTP/1.1 200"))
            await keptAlive.send("GET /healthcheck HTTP/1.1\r\nHo")
            let start = ContinuousClock.now
            var trickleClosed = false
            for byte in "GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8.cycled(250) {
                let sent = await trickle.send([byte])
                let closed = await trickle.isClosed(within: .milliseconds(200))
                if !sent || closed {
                    trickleClosed = true
                    break
                }
            }
            #expect(trickleClosed, "a trickled head was not closed within \(ContinuousClock.now - start)")
            #expect(await silent.isClosed(within: .seconds(60)))
            #expect(await keptAlive.isClosed(within: .seconds(60)))
            // Far below the 600 s idle timeout: the header timeout closed them.
            #expect(ContinuousClock.now - start < .seconds(300))
            // The server still answers.
            let fresh = try RawTCPConnection(port: port)
            #expect(await fresh.request(Self.healthCheck).hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test func idleKeepAliveConnectionsAreClosedByTheIdleTimeout() async throws {
        let directory = TemporaryDirectory()
        try await withLiveTCPServer(dataDirectory: directory.path + "/data") { configuration in
            configuration.connectionLimits.idleTimeout = .seconds(1)
            configuration.connectionLimits.headerTimeout = .seconds(600)
        } _: { _, port in
            let keptAlive = try RawTCPConnection(port: port)
            #expect(await keptAlive.request(Self.healthCheck).hasPrefix("HTTP/1.1 200"))
            let start = ContinuousClock.now
            #expect(await keptAlive.isClosed(within: .seconds(60)))
            #expect(ContinuousClock.now - start < .seconds(300))
        }
    }

    @Test func limitsMustBePositive() throws {
        var limits = ConnectionLimits()
        limits.maxUnauthenticatedPerSource = 0
        #expect(throws: TygerServerError.self) { try limits.validate() }
        limits = ConnectionLimits()
        limits.headerTimeout = .zero
        #expect(throws: TygerServerError.self) { try limits.validate() }
    }
}

extension Sequence {
    /// The elements repeated until `count` have been produced.
    fileprivate func cycled(_ count: Int) -> [Element] {
        let all = Array(self)
        return (0..<count).map { all[$0 % all.count] }
    }
}

struct ConnectionSourceKeyTests {
    @Test(arguments: [
        ("127.0.0.2", "127.0.0.2"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("2001:db8:0:1::5", "2001:db8:0:1::/64"),
        ("2001:db8:0:1:ffff::9", "2001:db8:0:1::/64"),
        ("::1", "0:0:0:0::/64"),
    ])
    func sourcesAreAddressesOrIPv6Prefixes(address: String, key: String) throws {
        #expect(ConnectionGuard.sourceKey(try SocketAddress(ipAddress: address, port: 8080)) == key)
    }
}
