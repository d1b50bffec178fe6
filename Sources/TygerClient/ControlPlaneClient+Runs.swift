public import NIOCore
import NIOHTTP1
public import TygerModel

/// Which runs a list or count selects.
public struct RunFilter: Sendable, Hashable {
    /// Runs created strictly after this RFC 3339 time (sent as written, so its precision is kept).
    public var since: String?
    /// Runs with all of these tags.
    public var tags: [String: String]
    /// Runs with any of these statuses (all when empty).
    public var statuses: [String]

    /// Creates a filter.
    public init(since: String? = nil, tags: [String: String] = [:], statuses: [String] = []) {
        self.since = since
        self.tags = tags
        self.statuses = statuses
    }

    var queryItems: [(String, String)] {
        var query: [(String, String)] = []
        for (k, v) in tags.sorted(by: { $0.key < $1.key }) { query.append(("tag[\(k)]", v)) }
        if let since { query.append(("since", since)) }
        for s in statuses { query.append(("status", s)) }
        return query
    }
}

/// What `GET /runs/{id}/logs` returns.
public struct RunLogOptions: Sendable, Hashable {
    /// Prefix each line with its RFC 3339 timestamp.
    public var timestamps: Bool
    /// Only the last N lines.
    public var tailLines: Int?
    /// Only lines after this RFC 3339 time.
    public var since: String?
    /// Keep streaming until the run ends.
    public var follow: Bool

    /// Creates options.
    public init(timestamps: Bool = false, tailLines: Int? = nil, since: String? = nil, follow: Bool = false) {
        self.timestamps = timestamps
        self.tailLines = tailLines
        self.since = since
        self.follow = follow
    }
}

extension ControlPlaneClient {
    private static func path(run id: String) -> String { "/runs/\(escape(id))" }

    private static func path(codespec name: String, version: Int?) -> String {
        "/codespecs/\(escape(name))" + (version.map { "/versions/\($0)" } ?? "")
    }

    // MARK: - Codespecs

    /// `PUT /codespecs/{name}`: stores a codespec; an unchanged one keeps its version.
    ///
    /// - Returns: The stored codespec, with its version.
    /// - Throws: ``TygerClientError`` for an invalid codespec (the server's message) and transport failures.
    public func putCodespec(name: String, _ codespec: Codespec) async throws -> Codespec {
        let response = try await send(.PUT, Self.path(codespec: name, version: nil), json: Self.body(codespec))
        var stored = try Self.decode(Codespec.self, from: response.body, what: "PUT /codespecs/\(name)")
        if stored.version == nil, let location = response.headers.first(name: "Location"),
            let version = location.split(separator: "/").last.flatMap({ Int($0) })
        {
            stored.version = version
        }
        return stored
    }

    /// `GET /codespecs/{name}` (the latest version) or `GET /codespecs/{name}/versions/{version}`.
    ///
    /// - Throws: ``TygerClientError`` with status 404 for an unknown name or version.
    public func getCodespec(name: String, version: Int? = nil) async throws -> Codespec {
        try await call(Codespec.self, .GET, Self.path(codespec: name, version: version))
    }

    /// `GET /codespecs`: the first page of codespecs (the latest version of each).
    public func listCodespecs(prefix: String? = nil, limit: Int? = nil) async throws -> Page<Codespec> {
        var query: [(String, String)] = []
        if let prefix { query.append(("prefix", prefix)) }
        if let limit { query.append(("limit", String(limit))) }
        return try await call(Page<Codespec>.self, .GET, "/codespecs", query: query)
    }

    // MARK: - Runs

    /// `POST /runs`: creates a run (returns at once; the run starts in the background).
    ///
    /// - Parameters:
    ///   - idempotencyKey: Sent as `Idempotency-Key`, so that a retried create returns the first run.
    ///   - pullImage: Asks the server to pull the codespec's image first (`pull=true`; container executors).
    /// - Throws: ``TygerClientError`` for an invalid run (the server's message) and transport failures.
    public func createRun(_ run: Run, idempotencyKey: String? = nil, pullImage: Bool = false) async throws -> Run {
        var headers: HTTPHeaders = [:]
        if let idempotencyKey { headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        let query = pullImage ? [("pull", "true")] : []
        return try await call(Run.self, .POST, "/runs", query: query, json: Self.body(run), headers: headers)
    }

    /// `GET /runs/{id}`.
    ///
    /// - Throws: ``TygerClientError`` with status 404 for an unknown run.
    public func getRun(id: String) async throws -> Run {
        try await call(Run.self, .GET, Self.path(run: id))
    }

    /// `GET /runs`: the first page of runs, newest first.
    public func listRuns(_ filter: RunFilter, limit: Int? = nil) async throws -> Page<Run> {
        try await call(
            Page<Run>.self,
            .GET,
            "/runs",
            query: filter.queryItems + (limit.map { [("limit", String($0))] } ?? [])
        )
    }

    /// `GET /runs/counts`: the number of runs per status (camelCase keys, non-zero counts only).
    public func runCounts(_ filter: RunFilter) async throws -> [String: Int] {
        try await call([String: Int].self, .GET, "/runs/counts", query: filter.queryItems)
    }

    /// `POST /runs/{id}/cancel`: asks for a run to be canceled.
    ///
    /// - Returns: The run after the request (`Canceling`, `Canceled`, or unchanged when already final).
    public func cancelRun(id: String) async throws -> Run {
        try await call(Run.self, .POST, Self.path(run: id) + "/cancel")
    }

    /// `PUT /runs/{id}`: replaces a run's tags.
    ///
    /// - Parameter ifMatch: Update only if the run's ETag is this one.
    /// - Throws: ``TygerClientError`` with status 412 when `ifMatch` no longer matches.
    public func setRunTags(id: String, tags: [String: String]?, ifMatch: String? = nil) async throws -> Run {
        var headers: HTTPHeaders = [:]
        if let ifMatch { headers.add(name: "If-Match", value: ifMatch) }
        return try await call(
            Run.self,
            .PUT,
            Self.path(run: id),
            json: Self.body(RunTagsUpdate(tags: tags)),
            headers: headers
        )
    }

    /// `GET /runs/{id}?watch=true`: calls `onRun` with the run as it is and on each change, until it is final.
    ///
    /// - Throws: ``TygerClientError`` (status 404 for an unknown run), and what `onRun` throws.
    public func watchRun(id: String, onRun: (Run) async throws -> Void) async throws {
        var pending = ByteBuffer()
        try await stream(Self.path(run: id), query: [("watch", "true")]) { chunk in
            var c = chunk
            pending.writeBuffer(&c)
            while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending.readSlice(length: newline - pending.readerIndex) ?? ByteBuffer()
                pending.moveReaderIndex(forwardBy: 1)
                if line.readableBytes == 0 { continue }
                try await onRun(try Self.decode(Run.self, from: line, what: "GET /runs/\(id)?watch=true"))
            }
        }
    }

    /// `GET /runs/{id}/logs`: streams a run's log to `onChunk`.
    ///
    /// - Throws: ``TygerClientError`` (status 404 for an unknown run), and what `onChunk` throws.
    public func runLogs(
        id: String,
        _ options: RunLogOptions = RunLogOptions(),
        onChunk: (ByteBuffer) async throws -> Void
    ) async throws {
        var query = [("timestamps", options.timestamps ? "true" : "false")]
        if let tail = options.tailLines { query.append(("tailLines", String(tail))) }
        if let since = options.since { query.append(("since", since)) }
        if options.follow { query.append(("follow", "true")) }
        try await stream(Self.path(run: id) + "/logs", query: query, onChunk: onChunk)
    }
}

/// The body of `PUT /runs/{id}`: `{"tags":{...}|null}`.
private struct RunTagsUpdate: Encodable {
    var tags: [String: String]?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tags, forKey: .tags)
    }

    enum CodingKeys: String, CodingKey { case tags }
}
