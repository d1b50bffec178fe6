public import NIOCore
public import NIOHTTP1
public import Foundation
import NIOFoundationCompat

/// Talks to the control-plane REST API (v1.0): adds `api-version`, the bearer token and JSON headers, and turns
/// error envelopes (`{"error":{"code","message"}}`) into `TygerClientError`s printed as `<code>: <message>`.
public struct ControlPlaneClient: Sendable {
    public static let apiVersion = "1.0"
    /// The server's base URL (path is ignored).
    public let server: ServiceURL
    public let transport: HTTPTransport

    public init(server: ServiceURL, transport: HTTPTransport) {
        self.server = server
        self.transport = transport
    }

    /// Sends a request to `path` with `query` items, returning the response if its status is 2xx.
    ///
    /// - Throws: `TygerClientError` `.http` with the server's code and message, `.authentication` for 401,
    ///   `.transport` when the server cannot be reached.
    @discardableResult
    public func call(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
        headers extra: HTTPHeaders = [:]
    ) async throws -> HTTPTransport.Response {
        var headers = requestHeaders()
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(contentsOf: extra)
        let response = try await transport.send(
            method, url(path, query: query), headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        guard (200..<300).contains(response.status) else { throw Self.error(from: response) }
        return response
    }

    /// Follows a `nextLink` (a path with query, relative to the server).
    public func get(link: String) async throws -> HTTPTransport.Response {
        var link = link
        if !link.hasPrefix("/") { link = "/" + link }
        let (path, query) = link.firstIndex(of: "?").map { (String(link[..<$0]), String(link[link.index(after: $0)...])) } ?? (link, "")
        let response = try await transport.send(.GET, server.with(path: path, query: query), headers: requestHeaders())
        guard (200..<300).contains(response.status) else { throw Self.error(from: response) }
        return response
    }

    /// Streams the body of `GET path` chunk by chunk (watch streams, logs) until the server ends it.
    ///
    /// - Throws: As `call`, for a non-2xx answer (its body is read whole to get the error envelope).
    public func stream(
        _ path: String, query: [(String, String)] = [], onChunk: (ByteBuffer) async throws -> Void
    ) async throws {
        var status = 0
        var errorBody = ByteBuffer()
        try await transport.stream(.GET, url(path, query: query), headers: requestHeaders(), head: { s, _ in status = s }) {
            chunk in
            if (200..<300).contains(status) {
                try await onChunk(chunk)
            } else {
                var c = chunk
                errorBody.writeBuffer(&c)
            }
        }
        guard (200..<300).contains(status) else {
            throw Self.error(from: HTTPTransport.Response(status: status, headers: [:], body: errorBody))
        }
    }

    /// The server URL for `path` with `query`, `api-version` added unless present.
    private func url(_ path: String, query: [(String, String)]) -> ServiceURL {
        var items = query
        if !items.contains(where: { $0.0 == "api-version" }) { items.insert(("api-version", Self.apiVersion), at: 0) }
        return server.with(path: path, query: items.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&"))
    }

    /// `Accept: application/json` and the bearer token, if any.
    private func requestHeaders() -> HTTPHeaders {
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if let token = transport.bearerToken { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return headers
    }

    static func error(from response: HTTPTransport.Response) -> TygerClientError {
        if let object = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any],
            let error = object["error"] as? [String: Any], let code = error["code"] as? String
        {
            let message = error["message"] as? String ?? ""
            let kind: TygerClientError.Code = response.status == 401 ? .authentication : .http
            return TygerClientError(kind, "\(code): \(message)", status: response.status, errorCode: code)
        }
        if response.status == 401 {
            return TygerClientError(.authentication, "Unauthorized: the server refused the token (run 'tyger login')", status: 401)
        }
        return TygerClientError(.http, "unexpected status code \(response.status)", status: response.status)
    }

    /// Percent-escapes a query component (RFC 3986 unreserved characters kept; `[` and `]` escaped).
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
