import Foundation
public import Logging
public import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import TygerCore
public import TygerModel

/// A typed client of the control-plane REST API (v1.0): one method per operation, over the wire types of
/// `TygerModel`.
///
/// Every request carries `api-version` (``TygerModel/APIVersion``), the bearer token and JSON headers. A non-2xx
/// answer becomes a ``TygerClientError`` decoded from the ``TygerModel/ErrorResponse`` envelope and printed as
/// `<code>: <message>`. At `debug` each request is logged with its method, path, status, duration and the server's
/// `Request-Id`.
public struct ControlPlaneClient: Sendable {
    /// The server's base URL (its path is ignored).
    public let server: ServiceURL
    public let transport: HTTPTransport
    public let logger: Logger

    /// A logger that drops everything, for callers that do not log.
    public static let loggingDisabled = Logger(label: "tyger.client", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The response header in which the server names the request, for its logs.
    public static let requestIDHeader = "Request-Id"

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - server: The server's base URL.
    ///   - transport: The HTTP transport (its bearer token authenticates the requests).
    ///   - logger: Where request logs go (debug level only).
    public init(server: ServiceURL, transport: HTTPTransport, logger: Logger = Self.loggingDisabled) {
        self.server = server
        self.transport = transport
        self.logger = logger
    }

    // MARK: - Requests

    /// Sends a request to `path` with `query` items, returning the response if its status is 2xx.
    ///
    /// - Throws: ``TygerClientError`` `.http` with the server's code and message, `.authentication` for 401,
    ///   `.transport` when the server cannot be reached.
    @discardableResult
    func send(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json body: Data? = nil,
        headers extra: HTTPHeaders = [:]
    ) async throws -> HTTPTransport.Response {
        try await send(method, url(path, query: query), json: body, headers: extra)
    }

    private func send(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        json body: Data? = nil,
        headers extra: HTTPHeaders = [:]
    ) async throws -> HTTPTransport.Response {
        var headers = requestHeaders()
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(contentsOf: extra)
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            let response: HTTPTransport.Response
            do {
                response = try await transport.send(
                    method,
                    url,
                    headers: headers,
                    body: body.map { ByteBuffer(data: $0) }
                )
            } catch let error as TygerClientError
                where error.closedBeforeAnswer && Self.safeToRepeat(method, url.path, headers)
                && attempt + 1 < RetryPolicy.default.maxAttempts
            {
                // A connection the server closed before answering (it sheds connections beyond its limits): again.
                attempt += 1
                try await Task.sleep(for: RetryPolicy.default.delay(attempt: attempt, headers: nil))
                continue
            } catch {
                logFailure(method, url, error: error, started: started)
                throw error
            }
            log(method, url, status: response.status, headers: response.headers, started: started)
            guard (200..<300).contains(response.status) else { throw Self.error(from: response, path: url.path) }
            return response
        }
    }

    /// Whether a request may be sent again after its connection closed without an answer: every method but POST, and
    /// the POSTs whose repetition changes nothing more (access URLs, cancel) or that carry an `Idempotency-Key`.
    static func safeToRepeat(_ method: HTTPMethod, _ path: String, _ headers: HTTPHeaders) -> Bool {
        if method != .POST { return true }
        if headers.contains(name: "Idempotency-Key") { return true }
        return path.hasSuffix("/access") || path.hasSuffix("/cancel")
    }

    /// Sends a request and decodes the JSON answer as `T`.
    func call<T: Decodable>(
        _ type: T.Type,
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json body: Data? = nil,
        headers: HTTPHeaders = [:]
    ) async throws -> T {
        let response = try await send(method, path, query: query, json: body, headers: headers)
        return try Self.decode(type, from: response.body, what: "\(method) \(path)")
    }

    /// Streams the body of `GET path` chunk by chunk (watch streams, logs) until the server ends it.
    ///
    /// - Throws: As ``send(_:_:query:json:headers:)``, for a non-2xx answer (its body is read whole to get the error
    ///   envelope).
    func stream(
        _ path: String,
        query: [(String, String)] = [],
        onChunk: (ByteBuffer) async throws -> Void
    ) async throws {
        let url = url(path, query: query)
        let started = ContinuousClock.now
        var status = 0
        var errorBody = ByteBuffer()
        do {
            try await transport.stream(
                .GET,
                url,
                headers: requestHeaders(),
                head: { s, headers in
                    status = s
                    log(.GET, url, status: s, headers: headers, started: started)
                }
            ) { chunk in
                if (200..<300).contains(status) {
                    try await onChunk(chunk)
                } else {
                    var c = chunk
                    errorBody.writeBuffer(&c)
                }
            }
        } catch let error as TygerClientError where error.code == .transport && status == 0 {
            logFailure(.GET, url, error: error, started: started)
            throw error
        }
        guard (200..<300).contains(status) else {
            throw Self.error(
                from: HTTPTransport.Response(status: status, headers: [:], body: errorBody),
                path: url.path
            )
        }
    }

    /// Fetches the page a `nextLink` names (a path with query, relative to the server).
    ///
    /// - Throws: As ``send(_:_:query:json:headers:)``; ``TygerClientError`` `.invalidResponse` for a body that is
    ///   not such a page.
    public func nextPage<Item: Codable & Sendable>(
        _ link: String,
        of type: Item.Type = Item.self
    )
        async throws -> Page<Item>
    {
        var link = link
        if !link.hasPrefix("/") { link = "/" + link }
        let (path, query) =
            link.firstIndex(of: "?").map { (String(link[..<$0]), String(link[link.index(after: $0)...])) }
            ?? (link, "")
        let response = try await send(.GET, server.with(path: path, query: query))
        return try Self.decode(Page<Item>.self, from: response.body, what: "GET \(path)")
    }

    /// Whether the server answers `GET /healthcheck` with 200 within `timeout`.
    public func isHealthy(timeout: TimeAmount = .seconds(2)) async -> Bool {
        let response = try? await transport.send(.GET, server.with(path: "/healthcheck"), timeout: timeout)
        return response?.status == 200
    }

    /// `GET /metadata`: the server's capabilities and API versions.
    ///
    /// - Throws: As ``send(_:_:query:json:headers:)``.
    public func metadata() async throws -> ServiceMetadata {
        try await call(ServiceMetadata.self, .GET, "/metadata")
    }

    // MARK: - Encoding

    /// The JSON body of `value`.
    static func body(_ value: some Encodable) throws -> Data {
        try TygerJSON.encode(value)
    }

    /// Decodes a response body with the wire decoder.
    ///
    /// - Throws: ``TygerClientError`` `.invalidResponse` naming the request and the decoding problem.
    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer, what: String) throws -> T {
        do {
            return try TygerJSON.makeDecoder().decode(type, from: Data(buffer: body))
        } catch let error as DecodingError {
            throw TygerClientError(
                .invalidResponse,
                "the server's answer to \(what) is not valid: \(YAMLSpecs.describe(error))"
            )
        } catch {
            throw TygerClientError(.invalidResponse, "the server's answer to \(what) is not valid: \(error)")
        }
    }

    /// The server URL for `path` with `query`, `api-version` added unless present.
    func url(_ path: String, query: [(String, String)]) -> ServiceURL {
        var items = query
        if !items.contains(where: { $0.0 == APIVersion.queryParameterName }) {
            items.insert((APIVersion.queryParameterName, APIVersion.v1_0), at: 0)
        }
        let text = items.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        return server.with(path: path, query: text)
    }

    /// `Accept: application/json` and the bearer token, if any.
    private func requestHeaders() -> HTTPHeaders {
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if let token = transport.bearerToken { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return headers
    }

    // MARK: - Logging

    private func log(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        status: Int,
        headers: HTTPHeaders,
        started: ContinuousClock.Instant
    ) {
        guard logger.logLevel <= .debug else { return }
        var metadata: Logger.Metadata = [
            "method": "\(method)", "path": "\(url.path)", "status": "\(status)",
            "duration": "\(Self.milliseconds(since: started))ms",
        ]
        if let id = headers.first(name: Self.requestIDHeader) { metadata["requestId"] = "\(id)" }
        logger.debug("Control-plane request", metadata: metadata)
    }

    private func logFailure(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        error: any Error,
        started: ContinuousClock.Instant
    ) {
        logger.debug(
            "Control-plane request failed",
            metadata: [
                "method": "\(method)", "path": "\(url.path)", "duration": "\(Self.milliseconds(since: started))ms",
                "error": "\(error)",
            ]
        )
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        let ms = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return String(Int64(ms.rounded()))
    }

    // MARK: - Errors

    /// The error for a non-2xx response: the envelope's `<code>: <message>`, else `unexpected status code N`.
    ///
    /// A 404 `NotFound` of a request for a buffer, run or codespec names it (`NotFound: buffer 'x' not found`) when the
    /// server's message is upstream's generic one (``ErrorCode/notFoundMessage``); a specific message (a soft-deleted
    /// buffer's) is kept.
    ///
    /// - Parameter path: The request's path, to name what was not found.
    public static func error(from response: HTTPTransport.Response, path: String? = nil) -> TygerClientError {
        if let envelope = try? TygerJSON.makeDecoder().decode(ErrorResponse.self, from: Data(buffer: response.body)) {
            let kind: TygerClientError.Code = response.status == 401 ? .authentication : .http
            if response.status == 404, envelope.error.code == ErrorCode.notFound.rawValue,
                envelope.error.message == ErrorCode.notFoundMessage,
                let missing = path.flatMap(missingResource(path:))
            {
                return TygerClientError(
                    kind,
                    "\(envelope.error.code): \(missing) not found",
                    status: 404,
                    errorCode: envelope.error.code
                )
            }
            return TygerClientError(
                kind,
                "\(envelope.error.code): \(envelope.error.message)",
                status: response.status,
                errorCode: envelope.error.code
            )
        }
        if response.status == 401 {
            return TygerClientError(
                .authentication,
                "Unauthorized: the server refused the token (run 'tyger login')",
                status: 401
            )
        }
        return TygerClientError(.http, "unexpected status code \(response.status)", status: response.status)
    }

    /// What a request path names: `buffer 'ID'`, `run 'ID'`, `codespec 'NAME'` or `codespec 'NAME' version N`
    /// (after any base path of the server URL); `nil` for other paths.
    static func missingResource(path: String) -> String? {
        let segments = path.split(separator: "/").map { TextEncoding.percentDecoded($0) ?? String($0) }
        guard let i = segments.lastIndex(where: { ["buffers", "runs", "codespecs"].contains($0) }),
            i + 1 < segments.count
        else { return nil }
        let name = segments[i + 1]
        switch segments[i] {
        case "buffers": return "buffer '\(name)'"
        case "runs": return "run '\(name)'"
        default:
            if i + 3 < segments.count, segments[i + 2] == "versions" {
                return "codespec '\(name)' version \(segments[i + 3])"
            }
            return "codespec '\(name)'"
        }
    }

    /// Percent-escapes a path segment or query component (RFC 3986 unreserved characters kept).
    public static func escape(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
