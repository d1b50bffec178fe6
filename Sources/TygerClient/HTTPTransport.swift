public import AsyncHTTPClient
import Foundation
public import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOSSL
import TygerIO

/// The HTTP client both planes use: AsyncHTTPClient, with unix-socket URLs, a pool wide enough for `--dop`,
/// and optional trust in a private CA (for TLS servers with self-signed certificates).
///
/// Transports are scoped: ``withTransport(caCertificatePath:bearerToken:maxConnections:_:)`` hands one to a closure
/// and shuts its client down when the closure returns or throws.
public final class HTTPTransport: Sendable {
    public let client: HTTPClient
    /// Bearer token sent on control-plane requests (never on signed data-plane URLs).
    public let bearerToken: String?

    private init(client: HTTPClient, bearerToken: String?) {
        self.client = client
        self.bearerToken = bearerToken
    }

    /// Runs `body` with a new transport, shutting its HTTP client down afterwards, also when `body` throws.
    ///
    /// Redirects are never followed (a signed URL must not be sent elsewhere), connection attempts fail at once
    /// (callers retry with their own backoff), and responses are not decompressed.
    ///
    /// - Parameters:
    ///   - caCertificatePath: PEM file of extra trusted roots, for servers with their own CA.
    ///   - bearerToken: Token for `Authorization: Bearer`.
    ///   - maxConnections: The connection pool's size per host.
    ///   - body: The work to do with the transport; it must not keep the transport beyond its return.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public static func withTransport<T>(
        caCertificatePath: String? = nil,
        bearerToken: String? = nil,
        maxConnections: Int = 48,
        _ body: (HTTPTransport) async throws -> T
    ) async throws -> T {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections
        )
        // Fail a connection attempt at once (a missing socket, a refused port); callers retry with their own backoff.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(100))
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        if let caCertificatePath {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caCertificatePath)]
            configuration.tlsConfiguration = tls
        }
        return try await HTTPClient.withHTTPClient(configuration: configuration) { client in
            try await body(HTTPTransport(client: client, bearerToken: bearerToken))
        }
    }

    /// A response with its whole body.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: ByteBuffer
        /// The body as UTF-8 text.
        public var text: String { String(buffer: body) }
    }

    /// Sends a request and collects the response body (at most `maxBody` bytes).
    ///
    /// - Throws: `TygerClientError` `.transport` when no response arrived.
    public func send(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        headers: HTTPHeaders = [:],
        body: ByteBuffer? = nil,
        maxBody: Int = 300 << 20,
        timeout: TimeAmount = .seconds(100)
    ) async throws -> Response {
        var request = HTTPClientRequest(url: try Self.clientURL(url))
        request.method = method
        request.headers = headers
        if let body {
            request.body = .bytes(body)
        } else if method == .PUT || method == .POST {
            request.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let collected = try await response.body.collect(upTo: maxBody)
            return Response(status: Int(response.status.code), headers: response.headers, body: collected)
        } catch let error as TygerClientError {
            throw error
        } catch {
            throw Self.transportFailure(method, url, error)
        }
    }

    /// Streams a response body to `consume` chunk by chunk.
    public func stream(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        headers: HTTPHeaders = [:],
        timeout: TimeAmount = .hours(24 * 365),
        head: (Int, HTTPHeaders) async throws -> Void,
        consume: (ByteBuffer) async throws -> Void
    ) async throws {
        var request = HTTPClientRequest(url: try Self.clientURL(url))
        request.method = method
        request.headers = headers
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw Self.transportFailure(method, url, error)
        }
        try await head(Int(response.status.code), response.headers)
        for try await chunk in response.body { try await consume(chunk) }
    }

    public static func clientURL(_ url: ServiceURL) throws -> String {
        let pathAndQuery = url.path + (url.query.isEmpty ? "" : "?" + url.query)
        switch url.transport {
        case .tcp(let scheme, let authority):
            return "\(scheme)://\(authority)\(pathAndQuery)"
        case .unix(let socket):
            guard let u = URL(httpURLWithSocketPath: socket, uri: pathAndQuery) else {
                throw TygerClientError(.invalidURL, "invalid unix socket URL \(url.redacted)")
            }
            return u.absoluteString
        }
    }

    /// The one-line message of a request that got no answer: which server could not be reached and why, in words
    /// (`cannot reach http://127.0.0.1:1: connection refused`), not NIO's type names.
    public static func transportFailure(_ method: HTTPMethod, _ url: ServiceURL, _ error: any Error) -> TygerClientError
    {
        let (reason, connecting) = describe(error)
        let message = connecting ? "cannot reach \(url.origin): \(reason)" : "\(method) \(url.redacted): \(reason)"
        var failure = TygerClientError(.transport, message)
        failure.closedBeforeAnswer = !connecting && closedBeforeAnswer(error)
        return failure
    }

    /// Whether `error` is a connection closed by the server before its answer.
    static func closedBeforeAnswer(_ error: any Error) -> Bool {
        switch error {
        case let e as ChannelError: [.eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed].contains(e)
        case let e as HTTPClientError: e == .remoteConnectionClosed
        default: false
        }
    }

    /// Why a request failed, in words, and whether it failed while connecting.
    static func describe(_ error: any Error) -> (reason: String, connecting: Bool) {
        switch error {
        case let e as IOError:
            return (ProcessOps.describe(errno: e.errnoCode).lowercased(), true)
        case let e as NIOConnectionError:
            // The resolver's errors are NIO types whose descriptions are their names: the host says it.
            if e.dnsAError != nil || e.dnsAAAAError != nil { return ("cannot resolve the host name \(e.host)", true) }
            if let first = e.connectionErrors.first { return describe(first.error) }
            return ("no address to connect to for \(e.host)", true)
        case let e as ChannelError:
            switch e {
            case .connectTimeout: return ("connection timed out", true)
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed:
                return ("the connection was closed", false)
            default: return ("\(e)", false)
            }
        case let e as NIOSSLError:
            return ("TLS handshake failed: \(e)", true)
        case let e as HTTPClientError:
            switch e {
            case .connectTimeout: return ("connection timed out", true)
            case .tlsHandshakeTimeout: return ("TLS handshake timed out", true)
            case .remoteConnectionClosed: return ("the server closed the connection", false)
            case .readTimeout, .deadlineExceeded: return ("no answer in time", false)
            case .cancelled: return ("canceled", false)
            default: return (String(describing: e).replacingOccurrences(of: "HTTPClientError.", with: ""), false)
            }
        default:
            return ("\(error)", false)
        }
    }
}
