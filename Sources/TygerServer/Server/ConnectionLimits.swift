/// Limits on the TCP listener's connections: how many may be open, how many one source address may hold before any
/// request on them has authenticated, and how long a connection may sit idle or take to send a request head.
///
/// They keep a client without a token from exhausting the server's descriptors or holding every connection slot
/// (idle sockets, slowloris-style partial headers). The unix socket is trusted and not limited.
///
/// ```swift
/// var configuration = TygerServerConfiguration(dataDirectory: dir)
/// configuration.tcp = TCPListenerConfiguration(host: "0.0.0.0", port: 8080)
/// configuration.connectionLimits.maxConnections = 1000
/// ```
public struct ConnectionLimits: Sendable, Equatable {
    /// The most TCP connections open at once. When a new connection would exceed it, the oldest unauthenticated
    /// connection is closed to make room; when every connection has authenticated, the new one is closed.
    public var maxConnections: Int = 4096
    /// The most connections one source IP address may hold before a request on them authenticates (a bearer token
    /// or a valid signed URL). A new connection beyond it closes that source's oldest unauthenticated connection.
    public var maxUnauthenticatedPerSource: Int = 64
    /// How long a connection may wait between requests (no request in progress, no byte of the next one) before it
    /// is closed. Longer than the 60 s our clients keep idle connections, so a client never reuses a connection the
    /// server is closing.
    public var idleTimeout: Duration = .seconds(120)
    /// How long a request head may take to arrive: from the accept for a connection's first request, from the first
    /// byte for later ones. A connection that exceeds it is closed.
    public var headerTimeout: Duration = .seconds(30)

    /// The defaults: 4096 connections, 64 unauthenticated per source, 120 s idle, 30 s for a request head.
    public init() {}

    /// Checks that every limit is positive.
    ///
    /// - Throws: `TygerServerError` `.invalidConfiguration` naming the first limit that is not.
    public func validate() throws {
        if maxConnections < 1 {
            throw TygerServerError(.invalidConfiguration, "the connection cap must be at least 1")
        }
        if maxUnauthenticatedPerSource < 1 {
            throw TygerServerError(.invalidConfiguration, "the unauthenticated connection budget must be at least 1")
        }
        if idleTimeout <= .zero || headerTimeout <= .zero {
            throw TygerServerError(.invalidConfiguration, "connection timeouts must be positive")
        }
    }
}
