public import AsyncHTTPClient
public import Foundation
public import NIOCore
import NIOFoundationCompat
public import NIOHTTP1

/// A client of the Docker Engine API, the API both Docker and Podman (`podman system service`) serve: over a unix
/// socket (`unix:///var/run/docker.sock`) or plain TCP (`tcp://127.0.0.1:2375`).
///
/// Requests go to `/v<version>/…`, with the version negotiated once through `GET /_ping`: the engine's own,
/// capped at ``newestAPIVersion``; an engine older than ``oldestAPIVersion`` is refused.
public final class DockerEngineClient: Sendable {
    /// The oldest API version the executor works with (Docker 20.10, Podman 4).
    public static let oldestAPIVersion = APIVersion(1, 41)
    /// The newest API version this client was written against.
    public static let newestAPIVersion = APIVersion(1, 43)

    /// The HTTP client of every engine connection, for the life of the process: a connection attempt fails at once
    /// (a missing socket, a refused port) instead of being retried until the request's deadline.
    private static let engineHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        // Every running container holds two requests open (its log stream and its wait): the default of 8
        // connections would queue the requests of the fifth container behind the first four.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4096
        configuration.timeout = .init(connect: .seconds(10))
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// `unix:///path` or `tcp://host:port`, as given.
    public let host: String
    /// The version requests are sent with.
    public let apiVersion: APIVersion
    /// What the engine says it is: `Podman Engine 4.3.1`, `Docker Engine - Community 27.1.1`.
    public let engineName: String
    /// Whether the engine is Podman 4 or later, which also serves its own API (`/v4.0.0/libpod/…`) beside Docker's.
    public var isPodman4: Bool {
        guard engineName.hasPrefix("Podman"), let version = engineName.split(separator: " ").last,
            let major = Int(version.prefix(while: \.isNumber))
        else { return false }
        return major >= 4
    }
    private let base: String
    private let http: HTTPClient

    /// A major.minor API version.
    public struct APIVersion: Comparable, Sendable, CustomStringConvertible {
        public var major: Int
        public var minor: Int
        public init(_ major: Int, _ minor: Int) {
            self.major = major
            self.minor = minor
        }
        init?(_ text: String) {
            let parts = text.split(separator: ".")
            guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
            self.init(major, minor)
        }
        public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
        public var description: String { "\(major).\(minor)" }
    }

    /// Connects: parses `host`, asks the engine for its version and checks it.
    ///
    /// The version comes from `GET /_ping`'s `Api-Version` and `Server` headers (what Docker's own client
    /// negotiates with: Podman answers it at once, while its `GET /version` gathers host facts under the storage
    /// lock and takes seconds when the engine is busy), and from `GET /version` for engines whose ping says less.
    ///
    /// - Throws: `DockerEngineError` when the host is malformed, the engine cannot be reached, or its API is older
    ///   than ``oldestAPIVersion``.
    public static func connect(host: String) async throws -> DockerEngineClient {
        let base = try baseURL(of: host)
        let http = engineHTTP
        let ping = try await head(http, base + "/_ping", host: host, timeout: .seconds(30))
        var apiText = ping.status == 200 ? ping.headers.first(name: "Api-Version") ?? "" : ""
        var engineName = ping.status == 200 ? Self.engineName(server: ping.headers.first(name: "Server")) : nil
        if apiText.isEmpty || engineName == nil {
            let (status, body) = try await send(
                http,
                .GET,
                base + "/version",
                body: nil,
                host: host,
                timeout: .seconds(60)
            )
            guard status == 200, let version = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw DockerEngineError(
                    "the container engine at \(host) answered GET /version with \(status): \(Self.message(body))"
                )
            }
            apiText = version["ApiVersion"] as? String ?? ""
            var name = (version["Platform"] as? [String: Any])?["Name"] as? String ?? ""
            if let components = version["Components"] as? [[String: Any]], let first = components.first,
                let componentName = first["Name"] as? String
            {
                name = componentName
            }
            if name.isEmpty { name = "Docker Engine" }
            engineName = "\(name) \(version["Version"] as? String ?? "?")"
        }
        guard let api = APIVersion(apiText) else {
            throw DockerEngineError("the container engine at \(host) gave no API version (\"\(apiText)\")")
        }
        guard api >= oldestAPIVersion else {
            throw DockerEngineError(
                "the container engine at \(host) speaks API \(api); at least \(oldestAPIVersion) is needed"
            )
        }
        return DockerEngineClient(
            host: host,
            apiVersion: min(api, newestAPIVersion),
            engineName: engineName ?? "Docker Engine ?",
            base: base,
            http: http
        )
    }

    /// The engine's name and version from a `Server` header: `Libpod/4.3.1 (linux)` is `Podman Engine 4.3.1`,
    /// `Docker/27.1.1 (linux)` is `Docker Engine 27.1.1`; nil for anything else.
    static func engineName(server: String?) -> String? {
        guard let server, let slash = server.firstIndex(of: "/") else { return nil }
        let product = server[..<slash]
        let version = server[server.index(after: slash)...].prefix { !$0.isWhitespace }
        guard !version.isEmpty, version.first?.isNumber == true else { return nil }
        switch product {
        case "Libpod": return "Podman Engine \(version)"
        case "Docker": return "Docker Engine \(version)"
        default: return nil
        }
    }

    private init(host: String, apiVersion: APIVersion, engineName: String, base: String, http: HTTPClient) {
        self.host = host
        self.apiVersion = apiVersion
        self.engineName = engineName
        self.base = base
        self.http = http
    }

    /// The URL prefix of `host`: `http+unix://<socket>` or `http://host:port`.
    static func baseURL(of host: String) throws -> String {
        if host.hasPrefix("unix://") {
            let path = String(host.dropFirst("unix://".count))
            guard path.hasPrefix("/"), let url = URL(httpURLWithSocketPath: path, uri: "") else {
                throw DockerEngineError(
                    "invalid container engine address '\(host)': a unix socket needs an absolute path"
                )
            }
            var text = url.absoluteString
            while text.hasSuffix("/") { text.removeLast() }
            return text
        }
        if host.hasPrefix("tcp://") {
            let authority = host.dropFirst("tcp://".count).split(separator: "/").first.map(String.init) ?? ""
            guard !authority.isEmpty else { throw DockerEngineError("invalid container engine address '\(host)'") }
            return "http://" + authority
        }
        throw DockerEngineError(
            "invalid container engine address '\(host)': use unix:///path/to/docker.sock or tcp://host:port"
        )
    }

    // MARK: Requests

    /// Sends a request to `/v<version><path>` and collects the answer (at most 16 MiB).
    ///
    /// - Returns: The status and body.
    /// - Throws: `DockerEngineError` when the engine cannot be reached.
    public func request(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json: Any? = nil,
        timeout: TimeAmount = .seconds(60)
    ) async throws -> (status: Int, body: Data) {
        let body = try json.map { try JSONSerialization.data(withJSONObject: $0) }
        return try await Self.send(http, method, url(path, query), body: body, host: host, timeout: timeout)
    }

    /// Like ``request(_:_:query:json:timeout:)``, and throws the engine's message unless the status is 2xx.
    @discardableResult
    public func expectSuccess(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json: Any? = nil,
        timeout: TimeAmount = .seconds(60),
        what: String
    ) async throws -> Data {
        let (status, body) = try await request(method, path, query: query, json: json, timeout: timeout)
        guard (200..<300).contains(status) else { throw DockerEngineError(status: status, what: what, body: body) }
        return body
    }

    /// Streams a response body to `consume` (container logs, pull progress).
    ///
    /// - Throws: `DockerEngineError` when the engine cannot be reached or answers with an error status.
    public func stream(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        headers: [(String, String)] = [],
        timeout: TimeAmount = .hours(24 * 365),
        what: String,
        consume: (ByteBuffer) async throws -> Void
    ) async throws {
        let response = try await open(method, path, query: query, headers: headers, timeout: timeout, what: what)
        for try await chunk in response.body { try await consume(chunk) }
    }

    /// Sends a request and returns once the response head arrived, its body unread (a container's wait, whose head
    /// the engine sends at once and whose body at the exit).
    ///
    /// - Parameter libpod: Sends the request to Podman's own API (`/v4.0.0/libpod<path>`) instead of Docker's; only
    ///   for an engine that ``isPodman4``.
    /// - Throws: `DockerEngineError` when the engine cannot be reached or answers with an error status.
    public func open(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        headers: [(String, String)] = [],
        timeout: TimeAmount = .hours(24 * 365),
        libpod: Bool = false,
        what: String
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url(path, query, libpod: libpod))
        request.method = method
        request.headers.add(name: "Host", value: "docker")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if method == .POST { request.headers.add(name: "Content-Length", value: "0") }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw DockerEngineError.unreachable(host, error)
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
            throw DockerEngineError(status: status, what: what, body: body)
        }
        return response
    }

    private func url(_ path: String, _ query: [(String, String)], libpod: Bool = false) -> String {
        var text = base + (libpod ? "/v4.0.0/libpod" : "/v\(apiVersion)") + path
        if !query.isEmpty {
            text += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        }
        return text
    }

    private static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A `GET` whose body is dropped: the status and headers.
    private static func head(
        _ http: HTTPClient,
        _ url: String,
        host: String,
        timeout: TimeAmount
    ) async throws -> (status: Int, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Host", value: "docker")
        do {
            let response = try await http.execute(request, timeout: timeout)
            _ = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), response.headers)
        } catch {
            throw DockerEngineError.unreachable(host, error)
        }
    }

    private static func send(
        _ http: HTTPClient,
        _ method: HTTPMethod,
        _ url: String,
        body: Data?,
        host: String,
        timeout: TimeAmount
    ) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        // Over a unix socket there is no host name to send, and Podman refuses requests without a Host header.
        request.headers.add(name: "Host", value: "docker")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        } else if method == .POST || method == .PUT {
            request.headers.add(name: "Content-Length", value: "0")
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            let collected = try await response.body.collect(upTo: 16 << 20)
            return (Int(response.status.code), Data(buffer: collected))
        } catch {
            throw DockerEngineError.unreachable(host, error)
        }
    }

    /// The `message` of an engine's JSON error body, or the body as text.
    static func message(_ body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let message = object["message"] as? String
        {
            return message
        }
        return String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A failure talking to the container engine, in one line.
public struct DockerEngineError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The HTTP status of the engine's answer, when there was one.
    public var status: Int?

    public init(_ message: String, status: Int? = nil) {
        self.message = message
        self.status = status
    }

    init(status: Int, what: String, body: Data) {
        self.init("\(what): \(DockerEngineClient.message(body)) (\(status))", status: status)
    }

    static func unreachable(_ host: String, _ error: any Error) -> DockerEngineError {
        let reason: String
        switch error {
        case let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout:
            reason = "no answer in time"
        case let e as HTTPClientError where e == .remoteConnectionClosed:
            reason = "the engine closed the connection"
        default:
            let text = "\(error)"
            if text.contains("No such file") || text.contains("ENOENT") {
                reason = "no socket there"
            } else if text.contains("Connection refused") || text.contains("ECONNREFUSED") {
                reason = "connection refused"
            } else {
                reason = text
            }
        }
        return DockerEngineError("cannot reach the container engine at \(host): \(reason)")
    }

    public var description: String { message }
}
