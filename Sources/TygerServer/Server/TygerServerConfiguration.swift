public import Crypto
import Foundation
public import Hummingbird
public import Logging
public import ServiceLifecycle
public import TygerControlPlane
public import TygerModel

/// Everything `TygerServerApplication` needs to start: data directory, listeners, limits and the control-plane
/// routes to plug in.
public struct TygerServerConfiguration: Sendable {
    /// The data directory (see `DataDirectoryLayout`); created with mode 0700 when missing.
    public var dataDirectory: String
    /// Whether to listen on the unix socket `<dataDirectory>/api.sock` (trusted, mode 0600).
    public var unixSocket: Bool = true
    /// An optional TCP listener (bearer tokens or signed URLs required).
    public var tcp: TCPListenerConfiguration?
    /// Limits on the TCP listener's connections (cap, unauthenticated budget per source, idle and request-head
    /// timeouts). The unix socket is not limited.
    public var connectionLimits = ConnectionLimits()
    /// The largest blob one PUT may upload. Buffers use blobs of a few MiB; the default is 1 GiB.
    public var maxBlobSize: Int = 1 << 30
    /// The level of the per-request access log line: `.debug` by default (libraries log at trace/debug only);
    /// `tyger-server` sets `.info`.
    public var accessLogLevel: Logger.Level = .debug
    /// Where signed URLs get "now" from.
    public var clock: WallClock = .system
    /// Where bearer tokens are kept; `nil` means `<dataDirectory>/tokens.json`.
    public var tokenStore: (any TokenStore)?
    /// The keys that sign and check access URLs; `nil` means those of `<dataDirectory>/keys` (servers sharing a
    /// database share the keys it holds).
    public var signingKeys: SigningKeys?
    /// Keys of other servers whose access URLs this one accepts: a data plane (`tyger-server data-plane`) checks the
    /// URLs its control planes sign.
    public var trustedKeys: [P256.Signing.PublicKey] = []
    /// Data planes in other processes (`--data-plane NAME=URL`): buffers whose location is one of their names live
    /// there.
    public var dataPlanes: [RemoteDataPlane] = []
    /// Where buffers' blobs live when not in the data directory: an S3-compatible store (`--blob-store s3://…`).
    public var s3Buffers: S3Buffers?
    /// The longest a URL presigned for an S3 buffer lasts, in seconds (15 min; tests of expiry set a few seconds
    /// through `TYGER_TEST_PRESIGNED_LIFETIME`).
    public var maxPresignedLifetime: Int64 = S3AccessController.maxPresignedLifetime
    /// Route collections to add after the data plane (the control plane).
    public var controlPlane: [any ControlPlaneRoutes] = []
    /// Where a data plane without a control plane (`tyger-server data-plane`) keeps its HTTP writers' leases
    /// (``DataPlaneWriterLeases``): a manager over a repository of its own. A server with a buffers control plane
    /// keeps them in that one's repository, and ignores this.
    public var dataPlaneWriterLeases: BufferManager?
    /// Called with each listener's base URL once it is bound (the executable logs it).
    public var onListening: (@Sendable (String) -> Void)?

    /// A configuration for `dataDirectory` with the defaults: unix socket only.
    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
}

/// The TCP listener: address and optional TLS.
public struct TCPListenerConfiguration: Sendable {
    /// The address to bind (`127.0.0.1`, `0.0.0.0`, `::1`).
    public var host: String
    /// The port; 0 picks a free one (see `ListenerEndpoints.tcp` for the result).
    public var port: Int
    /// PEM certificate chain for TLS; with `tlsKeyPath`, the listener speaks HTTPS.
    public var tlsCertificatePath: String?
    /// PEM private key for TLS.
    public var tlsKeyPath: String?
    /// The base URL clients reach this listener by (`--advertise-url`): written in the access URLs given to TCP
    /// callers and told to the other servers of a shared database. `nil`: the bound address (`localhost` for a
    /// wildcard one). Set it for a listener bound to `0.0.0.0` or behind a proxy or a load balancer.
    public var advertisedURL: String?

    /// A plain or TLS TCP listener.
    public init(host: String, port: Int, tlsCertificatePath: String? = nil, tlsKeyPath: String? = nil) {
        self.host = host
        self.port = port
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
    }

    /// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
    ///
    /// - Throws: `TygerServerError` `.invalidConfiguration` when it is not of that form.
    public static func parse(_ text: String) throws -> TCPListenerConfiguration {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw TygerServerError(.invalidConfiguration, "expected [IPV6]:PORT, got '\(text)'")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw TygerServerError(.invalidConfiguration, "expected HOST:PORT, got '\(text)'")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
            throw TygerServerError(
                .invalidConfiguration,
                "expected HOST:PORT with a port from 0 to 65535, got '\(text)'"
            )
        }
        return TCPListenerConfiguration(host: String(host), port: port)
    }

    /// Checks an advertised URL: `http(s)://HOST[:PORT]`, no path (but `/`), query, fragment or credentials.
    /// Returns it without a trailing `/`.
    ///
    /// - Throws: `TygerServerError` `.invalidConfiguration` naming what is wrong.
    public static func parseAdvertisedURL(_ text: String) throws -> String {
        func bad(_ why: String) -> TygerServerError {
            TygerServerError(.invalidConfiguration, "--advertise-url '\(text)': \(why)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw bad("not a URL")
        }
        guard scheme == "http" || scheme == "https" else { throw bad("expected http:// or https://") }
        guard let host = components.host, !host.isEmpty else { throw bad("no host") }
        guard components.user == nil && components.password == nil else { throw bad("credentials do not belong here") }
        guard components.path.isEmpty || components.path == "/" else { throw bad("a path is not supported") }
        guard components.query == nil && components.fragment == nil else { throw bad("no query or fragment") }
        if let port = components.port, !(1...65535).contains(port) { throw bad("the port must be 1 to 65535") }
        var url = text
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}

/// A set of routes plugged into the server after the built-in ones: how the control plane joins the server.
///
/// ```swift
/// struct BufferRoutes: ControlPlaneRoutes {
///     func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication) {
///         router.post("/buffers") { request, context in
///             let id = "abc123"
///             try server.buffers.create(id)
///             let url = try server.issuer.accessURL(
///                 containerId: id, writeable: true, endpoint: server.endpoints.endpoint(for: context.transport)!)
///             …
///         }
///     }
/// }
/// var configuration = TygerServerConfiguration(dataDirectory: dir)
/// configuration.controlPlane = [BufferRoutes()]
/// ```
///
/// The routes run behind the same middleware as the data plane: request IDs and logging, the JSON error envelope
/// for thrown errors (throw `APIError` or a domain error that `APIError(mapping:)` knows), and authentication
/// (`context.caller` is `.unixSocket` or `.token`; unauthenticated TCP requests never reach them, except under
/// ``signedPathPrefixes``).
public protocol ControlPlaneRoutes: Sendable {
    /// Adds the routes.
    ///
    /// - Parameters:
    ///   - router: The server's router (`AppRequestContext`).
    ///   - server: The application: buffers, signed-URL issuer, endpoints, tokens.
    func addRoutes(to router: Router<AppRequestContext>, server: TygerServerApplication)

    /// Long-running work to run in the server's `ServiceGroup` beside the listeners (run engine, janitors); they
    /// get graceful shutdown on SIGTERM/SIGINT with the rest. Empty by default.
    ///
    /// - Parameter server: The application.
    func services(server: TygerServerApplication) -> [any Service]

    /// Path prefixes of routes that check a signed URL themselves, as the data plane does under `/containers/`:
    /// requests there that carry a signature (`sig`) need no bearer token. Empty by default.
    var signedPathPrefixes: [String] { get }

    /// The buffers control plane, which keeps the writer leases of the data plane; `nil` by default.
    ///
    /// - Parameter server: The application.
    func bufferManager(server: TygerServerApplication) -> BufferManager?

    /// Adds what these routes bring to `GET /metadata` (capabilities, the executor). Nothing by default.
    func describe(into metadata: inout ServiceMetadata)
}

extension ControlPlaneRoutes {
    public func describe(into metadata: inout ServiceMetadata) {}
    public func services(server: TygerServerApplication) -> [any Service] { [] }
    public var signedPathPrefixes: [String] { [] }
    public func bufferManager(server: TygerServerApplication) -> BufferManager? { nil }
}
