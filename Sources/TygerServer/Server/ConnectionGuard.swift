public import NIOCore
private import Synchronization

#if canImport(Glibc)
private import Glibc
#endif

/// Admits the TCP listener's connections within ``ConnectionLimits``: a server-wide cap, and a budget of
/// unauthenticated connections per source IP address.
///
/// A connection counts as unauthenticated until a request on it passes authentication
/// (``markAuthenticated(_:)``, called by `AuthenticationMiddleware`). When a source goes over its budget, or the
/// server over its cap, the oldest unauthenticated connections are closed first, so a client holding idle or
/// half-sent connections cannot starve health checks or clients with tokens.
public final class ConnectionGuard: Sendable {
    /// The limits it enforces.
    public let limits: ConnectionLimits
    private let state = Mutex(Table())

    /// A guard for `limits`.
    ///
    /// - Parameter limits: The limits.
    public init(limits: ConnectionLimits) { self.limits = limits }

    /// The connections open now.
    public var openCount: Int { state.withLock { $0.entries.count } }

    /// Registers an accepted connection, closing what the limits require: the oldest unauthenticated connection of
    /// its source when the source is over budget, the server's oldest unauthenticated connection when the server is
    /// at its cap. The connection is forgotten when it closes.
    ///
    /// - Parameter channel: The accepted connection.
    /// - Returns: Whether it was admitted; when not (every other connection has authenticated), the caller closes it
    ///   once its setup is done.
    @discardableResult
    public func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let source = Self.source(of: channel)
        let (serial, evicted) = state.withLock { table in
            table.admit(id: id, source: source, channel: channel, limits: limits)
        }
        for victim in evicted { victim.close(promise: nil) }
        guard let serial else { return false }
        // The serial tells this connection from a later one that reuses the channel's address.
        channel.closeFuture.whenComplete { _ in self.state.withLock { $0.remove(id, serial: serial) } }
        return true
    }

    /// Records that a request on the connection passed authentication: it no longer counts against its source's
    /// budget and is not closed to make room. Unknown connections (the unix socket) are ignored.
    ///
    /// - Parameter connection: The connection's identity (`ObjectIdentifier` of its channel).
    public func markAuthenticated(_ connection: ObjectIdentifier) {
        state.withLock { $0.authenticate(connection) }
    }

    static func source(of channel: any Channel) -> String { sourceKey(channel.remoteAddress) }

    /// The key connections are budgeted by: an IPv4 address (IPv4-mapped IPv6 addresses included) or the /64 of an
    /// IPv6 address (one host usually holds a whole /64), without the port.
    ///
    /// - Parameter address: The peer's address.
    /// - Returns: `1.2.3.4`, `2001:db8:0:1::/64`, or `unknown` for other address families.
    public static func sourceKey(_ address: SocketAddress?) -> String {
        switch address {
        case .v4:
            return address?.ipAddress ?? "unknown"
        case .v6:
            var bytes = [UInt8](repeating: 0, count: 16)  // an in6_addr
            guard let text = address?.ipAddress, inet_pton(AF_INET6, text, &bytes) == 1 else { return "unknown" }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return bytes[12..<16].map { String($0) }.joined(separator: ".")
            }
            let groups = stride(from: 0, to: 8, by: 2).map {
                String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
            }
            return groups.joined(separator: ":") + "::/64"
        default:
            return "unknown"
        }
    }

    /// The bookkeeping, under the lock.
    private struct Table {
        struct Entry {
            let source: String
            let channel: any Channel
            let serial: UInt64
            var authenticated = false
        }
        var entries: [ObjectIdentifier: Entry] = [:]
        var nextSerial: UInt64 = 0
        /// Unauthenticated connections per source, oldest first.
        var unauthenticated: [String: [ObjectIdentifier]] = [:]

        mutating func admit(
            id: ObjectIdentifier,
            source: String,
            channel: any Channel,
            limits: ConnectionLimits
        ) -> (serial: UInt64?, evicted: [any Channel]) {
            var evicted: [any Channel] = []
            while unauthenticated[source, default: []].count >= limits.maxUnauthenticatedPerSource,
                let oldest = unauthenticated[source]?.first
            {
                evicted += evict(oldest, source: source)
            }
            if entries.count >= limits.maxConnections {
                // Make room from the source holding the most unauthenticated connections.
                guard let busiest = unauthenticated.max(by: { $0.value.count < $1.value.count }),
                    let oldest = busiest.value.first
                else { return (nil, evicted) }
                evicted += evict(oldest, source: busiest.key)
            }
            nextSerial += 1
            entries[id] = Entry(source: source, channel: channel, serial: nextSerial)
            unauthenticated[source, default: []].append(id)
            return (nextSerial, evicted)
        }

        mutating func authenticate(_ id: ObjectIdentifier) {
            guard let entry = entries[id], !entry.authenticated else { return }
            entries[id]?.authenticated = true
            dropUnauthenticated(id, source: entry.source)
        }

        /// Forgets a closed connection, unless it was evicted already and its address now names another one.
        mutating func remove(_ id: ObjectIdentifier, serial: UInt64) {
            guard let entry = entries[id], entry.serial == serial else { return }
            entries[id] = nil
            if !entry.authenticated { dropUnauthenticated(id, source: entry.source) }
        }

        /// Forgets an unauthenticated connection of `source` and returns its channel, to close.
        private mutating func evict(_ id: ObjectIdentifier, source: String) -> [any Channel] {
            dropUnauthenticated(id, source: source)
            return entries.removeValue(forKey: id).map { [$0.channel] } ?? []
        }

        private mutating func dropUnauthenticated(_ id: ObjectIdentifier, source: String) {
            unauthenticated[source]?.removeAll { $0 == id }
            if unauthenticated[source]?.isEmpty == true { unauthenticated[source] = nil }
        }
    }
}
