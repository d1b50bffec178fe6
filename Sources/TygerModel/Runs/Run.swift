public import Foundation

/// A run: a codespec executed once with buffer arguments (upstream's `Run`).
///
/// System fields (`id`, `status`, times, ...) are set by the engine and ignored in create requests. The JSON form
/// matches upstream: camelCase, absent values omitted, `status` PascalCase.
public struct Run: Codable, Hashable, Sendable {
    /// `user` (default, omitted) or `system`.
    public var kind: String?
    public var id: Int64?
    public var eTag: String?
    public var status: RunStatus?
    public var statusReason: String?
    /// Number of replicas currently running (set while Running).
    public var runningCount: Int?
    public var createdAt: Date?
    public var startedAt: Date?
    public var finishedAt: Date?
    /// What to run.
    public var job: JobRunCodeTarget
    /// Workers (distributed runs): started before the job on the process executor; other executors refuse them.
    public var worker: RunCodeTarget?
    /// Seconds from creation after which the run is failed; default 43200 (12 h).
    public var timeoutSeconds: Int?
    public var cluster: String?
    public var tags: [String: String]?
    /// Recorded only (the local executor needs no access URLs).
    public var bufferAccessTtl: String?
    /// Addition: the image that actually ran, as the container engine identified it (set when the run starts on a
    /// container executor; absent for host processes).
    public var executedImage: ExecutedImage?

    /// The default `timeoutSeconds` (12 hours).
    public static let defaultTimeoutSeconds = 43200

    /// A run request.
    public init(
        job: JobRunCodeTarget,
        timeoutSeconds: Int? = nil,
        tags: [String: String]? = nil,
        cluster: String? = nil
    ) {
        self.job = job
        self.timeoutSeconds = timeoutSeconds
        self.tags = tags
        self.cluster = cluster
    }

    /// In upstream CLI's order (inventory §12.14): metadata first, then the target, `kind` last.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, status, statusReason, runningCount, createdAt, startedAt, finishedAt, job, worker, cluster
        case timeoutSeconds, tags, eTag, bufferAccessTtl, executedImage, kind
    }

    /// Encodes in ``CodingKeys`` order, absent values omitted (``OrderedJSONEncoder`` sorts maps by key).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(id, forKey: .id)
        try c.encodeIfPresent(status, forKey: .status)
        try c.encodeIfPresent(statusReason, forKey: .statusReason)
        try c.encodeIfPresent(runningCount, forKey: .runningCount)
        try c.encodeIfPresent(createdAt, forKey: .createdAt)
        try c.encodeIfPresent(startedAt, forKey: .startedAt)
        try c.encodeIfPresent(finishedAt, forKey: .finishedAt)
        try c.encode(job, forKey: .job)
        try c.encodeIfPresent(worker, forKey: .worker)
        try c.encodeIfPresent(cluster, forKey: .cluster)
        try c.encodeIfPresent(timeoutSeconds, forKey: .timeoutSeconds)
        try c.encodeIfPresent(tags, forKey: .tags)
        try c.encodeIfPresent(eTag, forKey: .eTag)
        try c.encodeIfPresent(bufferAccessTtl, forKey: .bufferAccessTtl)
        try c.encodeIfPresent(executedImage, forKey: .executedImage)
        try c.encodeIfPresent(kind, forKey: .kind)
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "run")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        id = try c.decodeIfPresent(Int64.self, forKey: .id)
        eTag = try c.decodeIfPresent(String.self, forKey: .eTag)
        status = try c.decodeIfPresent(RunStatus.self, forKey: .status)
        statusReason = try c.decodeIfPresent(String.self, forKey: .statusReason)
        runningCount = try c.decodeIfPresent(Int.self, forKey: .runningCount)
        createdAt = try c.decodeIfPresent(Date.self, forKey: .createdAt)
        startedAt = try c.decodeIfPresent(Date.self, forKey: .startedAt)
        finishedAt = try c.decodeIfPresent(Date.self, forKey: .finishedAt)
        if let job = try c.decodeIfPresent(JobRunCodeTarget.self, forKey: .job) {
            self.job = job
        } else if decoder.userInfo[.tygerIncompleteSpecFile] as? Bool == true {
            // A file completed by command-line flags: the job may come from `--codespec`.
            self.job = JobRunCodeTarget(codespec: .named(""))
        } else {
            throw TygerModelError.invalid(
                "JSON deserialization for type 'Run' was missing required properties including: 'job'."
            )
        }
        worker = try c.decodeIfPresent(RunCodeTarget.self, forKey: .worker)
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds)
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster)
        tags = try c.decodeIfPresent([String: String].self, forKey: .tags)
        bufferAccessTtl = try c.decodeIfPresent(String.self, forKey: .bufferAccessTtl)
        executedImage = try c.decodeIfPresent(ExecutedImage.self, forKey: .executedImage)
    }

    /// The run with every system field cleared: what a create request may set.
    public var withoutSystemFields: Run {
        var copy = self
        copy.id = nil
        copy.eTag = nil
        copy.status = nil
        copy.statusReason = nil
        copy.runningCount = nil
        copy.createdAt = nil
        copy.startedAt = nil
        copy.finishedAt = nil
        copy.executedImage = nil
        return copy
    }

    /// The effective timeout.
    public var effectiveTimeoutSeconds: Int { timeoutSeconds ?? Self.defaultTimeoutSeconds }

    /// The resolved codespec, once the run was created (`job.codespec` is stored resolved).
    public var resolvedCodespec: Codespec? {
        if case .inline(let spec) = job.codespec { return spec }
        return nil
    }
}

/// The image a run's containers ran: what the codespec named, the engine's image ID (`sha256:…`, what ran whatever
/// the tag points at later) and, when the engine lists one, the repository digest (`repo@sha256:…`).
public struct ExecutedImage: Codable, Hashable, Sendable {
    /// The reference as the codespec wrote it (`ubuntu`, `ghcr.io/org/recon:1.2`).
    public var reference: String
    /// The engine's ID of the image: the digest of its configuration.
    public var imageId: String
    /// The repository digest, pullable anywhere (`docker.io/library/ubuntu@sha256:…`); absent for images the
    /// engine has no digest for (built or imported locally, on Docker).
    public var repoDigest: String?

    public init(reference: String, imageId: String, repoDigest: String? = nil) {
        self.reference = reference
        self.imageId = imageId
        self.repoDigest = repoDigest
    }
}

/// A run's status. PascalCase in JSON, as upstream.
public enum RunStatus: String, Codable, Hashable, Sendable, CaseIterable {
    case pending = "Pending"
    case running = "Running"
    case failed = "Failed"
    case succeeded = "Succeeded"
    case canceling = "Canceling"
    case canceled = "Canceled"

    /// Failed, Succeeded and Canceled are final.
    public var isTerminal: Bool { self == .failed || self == .succeeded || self == .canceled }

    /// Parses a status case-insensitively (query parameters).
    public init?(caseInsensitive text: String) {
        guard let match = Self.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
            return nil
        }
        self = match
    }

    /// The camelCase key used by `/runs/counts`.
    public var countKey: String { rawValue.prefix(1).lowercased() + rawValue.dropFirst() }
}

/// A reference to a codespec: `name`, `name/versions/N`, or the codespec itself.
public enum CodespecReference: Codable, Hashable, Sendable {
    case named(String)
    case inline(Codespec)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .named(s)
        } else {
            self = .inline(try c.decode(Codespec.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .named(let s): try c.encode(s)
        case .inline(let spec): try c.encode(spec)
        }
    }

    /// Parses `name` or `name/versions/N`.
    ///
    /// - Throws: ``TygerModelError`` `.invalidInput` with upstream's message when the text has another form.
    public static func parse(_ text: String) throws -> (name: String, version: Int?) {
        let invalid = TygerModelError.invalid(
            "The codespec reference '\(text)' is invalid. It should be in the form '<codespec_name>' or '<codespec_name>/versions/<version_number>'."
        )
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard (try? Codespec.validateName(name)) != nil else { throw invalid }
        if parts.count == 1 { return (name, nil) }
        guard parts.count == 3, parts[1] == "versions", !parts[2].isEmpty,
            parts[2].allSatisfy({ $0.isASCII && $0.isNumber }),
            let version = Int(parts[2])
        else { throw invalid }
        return (name, version)
    }
}

/// A job code target: the codespec, its buffer arguments and placement.
public struct JobRunCodeTarget: Codable, Hashable, Sendable {
    public var codespec: CodespecReference
    public var nodePool: String?
    /// Number of processes; default 1.
    public var replicas: Int
    /// Buffer arguments: parameter name → buffer ID (`_` on input requests for an ephemeral buffer).
    public var buffers: [String: String]?
    /// Tags for the buffers created for the run.
    public var tags: [String: String]?
    /// TTL of the buffers created for the run (recorded; passed to the buffer creation hook).
    public var bufferTtl: String?

    public init(
        codespec: CodespecReference,
        buffers: [String: String]? = nil,
        tags: [String: String]? = nil,
        replicas: Int = 1,
        nodePool: String? = nil
    ) {
        self.codespec = codespec
        self.buffers = buffers
        self.tags = tags
        self.replicas = replicas
        self.nodePool = nodePool
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case codespec, nodePool, replicas, buffers, tags, bufferTtl }

    /// Encodes in ``CodingKeys`` order, absent values omitted (``OrderedJSONEncoder`` sorts maps by key).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(codespec, forKey: .codespec)
        try c.encodeIfPresent(nodePool, forKey: .nodePool)
        try c.encode(replicas, forKey: .replicas)
        try c.encodeIfPresent(buffers, forKey: .buffers)
        try c.encodeIfPresent(tags, forKey: .tags)
        try c.encodeIfPresent(bufferTtl, forKey: .bufferTtl)
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "job")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let codespec = try c.decodeIfPresent(CodespecReference.self, forKey: .codespec) {
            self.codespec = codespec
        } else if decoder.userInfo[.tygerIncompleteSpecFile] as? Bool == true {
            // A file completed by command-line flags: the codespec may come from `--codespec`.
            self.codespec = .named("")
        } else {
            throw TygerModelError.invalid(
                "JSON deserialization for type 'JobRunCodeTarget' was missing required properties including: 'codespec'."
            )
        }
        nodePool = try c.decodeIfPresent(String.self, forKey: .nodePool)
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
        buffers = try c.decodeIfPresent([String: String].self, forKey: .buffers)
        tags = try c.decodeIfPresent([String: String].self, forKey: .tags)
        bufferTtl = try c.decodeIfPresent(String.self, forKey: .bufferTtl)
    }
}

/// A worker code target: the worker codespec, its replicas and node pool.
public struct RunCodeTarget: Codable, Hashable, Sendable {
    public var codespec: CodespecReference
    public var nodePool: String?
    public var replicas: Int?
}
