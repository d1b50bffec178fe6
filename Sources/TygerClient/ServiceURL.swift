/// A parsed server or access URL: `http(s)://host:port/path?query`, or upstream's unix-socket form
/// `http+unix:///path/to/api.sock:/path?query` (the socket path ends at the first `:` after the scheme).
public struct ServiceURL: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(scheme: String, authority: String)
        case unix(socketPath: String)
    }

    public var transport: Transport
    /// The HTTP path, starting with `/` (may be just `/`).
    public var path: String
    /// The raw query without `?`, possibly empty (kept verbatim: signatures are percent-encoded).
    public var query: String

    /// Parses `text`.
    /// - Throws: `TygerClientError` `.invalidURL` when it is not an http, https or http+unix URL.
    public init(_ text: String) throws {
        let bad = TygerClientError(
            .invalidURL,
            "invalid URL '\(ServiceURL.redact(text))': expected http://, https:// or http+unix://"
        )
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else { throw bad }
        let scheme = text[..<colon].lowercased()
        var rest = String(text[text.index(colon, offsetBy: 3)...])
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = String(rest[..<q])
        }
        if let hash = query.firstIndex(of: "#") { query = String(query[..<hash]) }
        switch scheme {
        case "http", "https":
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = String(rest[..<slash])
            guard !authority.isEmpty, !authority.contains("@") else { throw bad }
            self.transport = .tcp(scheme: scheme, authority: authority)
            self.path = slash == rest.endIndex ? "/" : String(rest[slash...])
        case "http+unix", "unix":
            // http+unix:///sock/path:/http/path  or  unix:///sock/path (a login URL: no HTTP path)
            let socketEnd = rest.firstIndex(of: ":") ?? rest.endIndex
            let socket = String(rest[..<socketEnd])
            guard socket.hasPrefix("/"), socket.count > 1 else { throw bad }
            self.transport = .unix(socketPath: socket)
            var p = socketEnd == rest.endIndex ? "/" : String(rest[rest.index(after: socketEnd)...])
            if !p.hasPrefix("/") { p = "/" + p }
            self.path = p
        default:
            throw bad
        }
        self.query = query
    }

    public init(transport: Transport, path: String, query: String = "") {
        self.transport = transport
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.query = query
    }

    /// Whether what is sent to this URL stays on this machine or is encrypted: https, a unix socket, or plain http
    /// to a loopback host (`localhost`, `127.0.0.0/8`, `::1`). A bearer token sent anywhere else can be read on the
    /// network.
    public var isPrivateChannel: Bool {
        switch transport {
        case .unix: return true
        case .tcp(let scheme, let authority):
            if scheme == "https" { return true }
            var host = Substring(authority)
            if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
                host = host[host.index(after: host.startIndex)..<close]
            } else if let colon = host.lastIndex(of: ":") {
                host = host[..<colon]
            }
            let name = host.lowercased()
            if name == "localhost" || name == "::1" { return true }
            let octets = name.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        }
    }

    /// The same server with another path and query.
    public func with(path: String, query: String = "") -> ServiceURL {
        ServiceURL(transport: transport, path: path, query: query)
    }

    /// Appends a path segment string (already escaped) to the path.
    public func appending(path suffix: String) -> ServiceURL {
        var p = path
        if p.hasSuffix("/") { p.removeLast() }
        return ServiceURL(transport: transport, path: p + (suffix.hasPrefix("/") ? suffix : "/" + suffix), query: query)
    }

    /// The server alone (`https://host:port`, `http+unix:///path/api.sock`), to say which one could not be reached.
    public var origin: String {
        switch transport {
        case .tcp(let scheme, let authority): return "\(scheme)://\(authority)"
        case .unix(let socket): return "http+unix://\(socket)"
        }
    }

    /// The URL in upstream's text form.
    public var description: String {
        let q = query.isEmpty ? "" : "?" + query
        switch transport {
        case .tcp(let scheme, let authority): return "\(scheme)://\(authority)\(path)\(q)"
        case .unix(let socket): return "http+unix://\(socket):\(path)\(q)"
        }
    }

    /// The URL with every query value other than `api-version` replaced by `REDACTED`, for logs and errors.
    public var redacted: String { ServiceURL.redact(description) }

    static func redact(_ text: String) -> String {
        guard let q = text.firstIndex(of: "?") else { return text }
        let parts = text[text.index(after: q)...].split(separator: "&").map { pair -> String in
            let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return key == "api-version" || key == "sp" || key == "writeable" ? String(pair) : "\(key)=REDACTED"
        }
        return text[..<q] + "?" + parts.joined(separator: "&")
    }
}
