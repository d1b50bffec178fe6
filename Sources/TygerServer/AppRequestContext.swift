public import Hummingbird
import NIOCore
private import Synchronization

/// Who is calling, as established by the authentication middleware (or by a signed URL on the data plane).
public enum CallerIdentity: Sendable, Equatable, CustomStringConvertible {
    /// Not authenticated (yet): anonymous routes (`/healthcheck`, `/metadata`) and signed data-plane requests before
    /// their signature is checked.
    case anonymous
    /// A local process on the trusted unix socket.
    case unixSocket
    /// A TCP client that presented a valid bearer token.
    case token(id: String, name: String)
    /// A data-plane client authorized by a signed URL for this container.
    case signedURL(containerId: String)

    public var description: String {
        switch self {
        case .anonymous: "anonymous"
        case .unixSocket: "unix-socket"
        case .token(let id, let name): "token:\(name)(\(id))"
        case .signedURL(let containerId): "signed-url:\(containerId)"
        }
    }
}

/// The listener a request arrived on.
public enum ListenerTransport: Sendable, Equatable {
    /// The unix domain socket: trusted (its file mode limits it to the server's user).
    case unixSocket
    /// TCP (plain or TLS): needs a bearer token or a signed URL.
    case tcp
    /// Not known (in-process router tests): treated like TCP.
    case unknown

    init(localAddress: SocketAddress?) {
        switch localAddress {
        case .unixDomainSocket: self = .unixSocket
        case .v4, .v6: self = .tcp
        case nil: self = .unknown
        }
    }
}

/// The request context of every route of the Tyger server, data plane and control plane alike.
///
/// It carries the request ID (also sent back as the `Request-Id` header), the listener the request came in on and
/// the caller identity the authentication middleware established. Control-plane routes read `caller` to authorize.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The listener the request arrived on.
    public let transport: ListenerTransport
    /// Who is calling; set by the authentication middleware and the data plane. Shared by every copy of the
    /// context of one request, so the outer logging middleware sees what inner layers established.
    public var caller: CallerIdentity {
        get { callerBox.value.withLock { $0.caller } }
        nonmutating set {
            let identified = callerBox.value.withLock { state -> (@Sendable () -> Void)? in
                state.caller = newValue
                guard newValue != .anonymous else { return nil }
                defer { state.whenIdentified = nil }
                return state.whenIdentified
            }
            identified?()
        }
    }

    /// Runs `hook` once, as soon as the caller is identified (not when the answer is sent): a long upload on a new
    /// connection counts as authenticated from its signature check on.
    public func whenIdentified(_ hook: @escaping @Sendable () -> Void) {
        callerBox.value.withLock { $0.whenIdentified = hook }
    }
    private let callerBox = CallerBox()
    /// The connection the request arrived on (its channel's identity), for ``ConnectionGuard``.
    public let connection: ObjectIdentifier

    /// Builds the context for one request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.transport = ListenerTransport(localAddress: source.channel.localAddress)
        self.connection = ObjectIdentifier(source.channel)
    }

    /// The request's ID, also sent back in the `Request-Id` response header and logged as `hb.request.id`.
    public var requestID: String { id }

    /// JSON bodies of the control plane are small; the data plane streams and ignores this limit.
    public var maxUploadSize: Int { 4 * 1024 * 1024 }
}

private final class CallerBox: Sendable {
    struct State {
        var caller = CallerIdentity.anonymous
        var whenIdentified: (@Sendable () -> Void)?
    }
    let value = Mutex(State())
}
