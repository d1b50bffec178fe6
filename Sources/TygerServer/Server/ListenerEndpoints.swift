private import Synchronization

/// The base URLs of the server's listeners, as clients write them in access URLs.
///
/// The TCP endpoint is known only once the listener is bound (the port may be 0 = any), so it is set when the
/// server starts; the unix endpoint is known from the configuration.
public final class ListenerEndpoints: Sendable {
    /// `http+unix://<socket path>:`, or `nil` without a unix listener.
    public let unixSocket: String?
    private let tcpValue = Mutex<String?>(nil)

    /// Endpoints with the given unix socket path (if any).
    public init(unixSocketPath: String?) {
        self.unixSocket = unixSocketPath.map { "http+unix://\($0):" }
    }

    /// `http(s)://host:port` of the TCP listener once bound, or `nil`.
    public var tcp: String? { tcpValue.withLock { $0 } }

    /// Records the bound TCP endpoint.
    func setTCP(_ endpoint: String) { tcpValue.withLock { $0 = endpoint } }

    /// All known endpoints: unix first.
    public var all: [String] { [unixSocket, tcp].compactMap { $0 } }

    /// The endpoint for a caller on `transport`: a TCP caller cannot use the socket, and the other way round.
    public func endpoint(for transport: ListenerTransport) -> String? {
        switch transport {
        case .unixSocket: unixSocket ?? tcp
        case .tcp, .unknown: tcp ?? unixSocket
        }
    }
}
