public import Foundation

/// A codespec: what a run executes (upstream's `JobCodespec`/`WorkerCodespec`, one type discriminated by `kind`).
///
/// The JSON form matches upstream: camelCase keys, absent values omitted, quantities as strings. Decoding is strict:
/// unknown fields are rejected with a message naming them.
public struct Codespec: Codable, Hashable, Sendable {
    /// `job` (the default in YAML files) or `worker`.
    public var kind: CodespecKind
    /// Set by the system from the path (`PUT /codespecs/{name}`).
    public var name: String?
    /// Set by the system; versions start at 1 and are immutable.
    public var version: Int?
    /// Set by the system.
    public var createdAt: Date?
    /// The container image. Required, as upstream; the local executor records it and does not use it.
    public var image: String
    /// The program and its leading arguments (upstream: the entrypoint override). Not run through a shell.
    public var command: [String]?
    /// Arguments appended to `command`.
    public var args: [String]?
    /// The working directory of the process.
    public var workingDir: String?
    /// Environment variables; values may reference `$(VAR)`.
    public var env: [String: String]?
    /// Workload identity (cloud only; recorded).
    public var identity: String?
    /// Resource requests and limits.
    public var resources: CodespecResources?
    /// The maximum number of replicas (recorded, not enforced, as upstream).
    public var maxReplicas: Int?
    /// Job only: the buffer parameters.
    public var buffers: BufferParameters?
    /// Job only: sockets (accepted for compatibility; the local executor rejects runs that use them).
    public var sockets: [CodespecSocket]?
    /// Worker only: named endpoints and their ports.
    public var endpoints: [String: Int]?

    /// Creates a job codespec.
    public init(
        kind: CodespecKind = .job,
        image: String,
        command: [String]? = nil,
        args: [String]? = nil,
        workingDir: String? = nil,
        env: [String: String]? = nil,
        resources: CodespecResources? = nil,
        maxReplicas: Int? = nil,
        buffers: BufferParameters? = nil,
        endpoints: [String: Int]? = nil
    ) {
        self.kind = kind
        self.image = image
        self.command = command
        self.args = args
        self.workingDir = workingDir
        self.env = env
        self.resources = resources
        self.maxReplicas = maxReplicas
        self.buffers = buffers
        self.endpoints = endpoints
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, name, version, createdAt, image, command, args, workingDir, env, identity, resources, maxReplicas
        case buffers, sockets, endpoints
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "codespec")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let kindText = try c.decodeIfPresent(String.self, forKey: .kind), !kindText.isEmpty {
            guard let kind = CodespecKind(rawValue: kindText) else {
                throw TygerModelError.invalid(
                    "Invalid value for the property 'kind'. It can be either 'job' or 'worker'."
                )
            }
            self.kind = kind
        } else if decoder.userInfo[.tygerRequireCodespecKind] as? Bool == true {
            throw TygerModelError.invalid("Missing discriminator property 'kind'.")
        } else {
            self.kind = .job
        }
        name = try c.decodeIfPresent(String.self, forKey: .name)
        version = try c.decodeIfPresent(Int.self, forKey: .version)
        createdAt = try c.decodeIfPresent(Date.self, forKey: .createdAt)
        if decoder.userInfo[.tygerIncompleteSpecFile] as? Bool == true {
            // A file completed by command-line flags: a missing image may come from `--image`.
            image = try c.decodeIfPresent(String.self, forKey: .image) ?? ""
        } else if let image = try c.decodeIfPresent(String.self, forKey: .image) {
            self.image = image
        } else {
            throw TygerModelError.invalid(
                "JSON deserialization for type 'Codespec' was missing required properties including: 'image'."
            )
        }
        command = try c.decodeIfPresent([String].self, forKey: .command)
        args = try c.decodeIfPresent([String].self, forKey: .args)
        workingDir = try c.decodeIfPresent(String.self, forKey: .workingDir)
        // `A:` with no value (YAML) or `"A": null` is an empty value, as upstream reads it.
        env = try c.decodeIfPresent([String: String?].self, forKey: .env)?.mapValues { $0 ?? "" }
        identity = try c.decodeIfPresent(String.self, forKey: .identity)
        resources = try c.decodeIfPresent(CodespecResources.self, forKey: .resources)
        maxReplicas = try c.decodeIfPresent(Int.self, forKey: .maxReplicas)
        buffers = try c.decodeIfPresent(BufferParameters.self, forKey: .buffers)
        sockets = try c.decodeIfPresent([CodespecSocket].self, forKey: .sockets)
        endpoints = try c.decodeIfPresent([String: Int].self, forKey: .endpoints)
    }

    /// Encodes in ``CodingKeys`` order, absent values omitted (``OrderedJSONEncoder`` sorts maps by key).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(version, forKey: .version)
        try c.encodeIfPresent(createdAt, forKey: .createdAt)
        try c.encode(image, forKey: .image)
        try c.encodeIfPresent(command, forKey: .command)
        try c.encodeIfPresent(args, forKey: .args)
        try c.encodeIfPresent(workingDir, forKey: .workingDir)
        try c.encodeIfPresent(env, forKey: .env)
        try c.encodeIfPresent(identity, forKey: .identity)
        try c.encodeIfPresent(resources, forKey: .resources)
        try c.encodeIfPresent(maxReplicas, forKey: .maxReplicas)
        try c.encodeIfPresent(buffers, forKey: .buffers)
        try c.encodeIfPresent(sockets, forKey: .sockets)
        try c.encodeIfPresent(endpoints, forKey: .endpoints)
    }

    /// The system fields cleared: what a user wrote, for comparisons.
    public var withoutSystemFields: Codespec {
        var copy = self
        copy.name = nil
        copy.version = nil
        copy.createdAt = nil
        return copy
    }

    /// Whether `other` describes the same codespec as `self`, ignoring the system fields (name, version, createdAt).
    ///
    /// As upstream: `env`, buffer inputs/outputs and endpoints compare order-insensitively (and absent equals
    /// empty); `command` and `args` compare in order.
    public func isEquivalent(to other: Codespec) -> Bool {
        func normalized(_ spec: Codespec) -> Codespec {
            var s = spec.withoutSystemFields
            if s.env?.isEmpty == true { s.env = nil }
            if s.command?.isEmpty == true { s.command = nil }
            if s.args?.isEmpty == true { s.args = nil }
            if s.endpoints?.isEmpty == true { s.endpoints = nil }
            if s.sockets?.isEmpty == true { s.sockets = nil }
            if var b = s.buffers {
                b.inputs = b.inputs.map { $0.sorted() }
                b.outputs = b.outputs.map { $0.sorted() }
                if b.inputs?.isEmpty == true { b.inputs = nil }
                if b.outputs?.isEmpty == true { b.outputs = nil }
                s.buffers = b.inputs == nil && b.outputs == nil ? nil : b
            }
            return s
        }
        return normalized(self) == normalized(other)
    }

    /// The buffer parameters, inputs first.
    public var bufferParameters: [(name: String, isInput: Bool)] {
        (buffers?.inputs ?? []).map { ($0, true) } + (buffers?.outputs ?? []).map { ($0, false) }
    }
}

/// The kind of a codespec.
public enum CodespecKind: String, Codable, Hashable, Sendable {
    case job
    case worker
}

/// A job codespec's buffer parameters.
public struct BufferParameters: Codable, Hashable, Sendable {
    public var inputs: [String]?
    public var outputs: [String]?

    public init(inputs: [String]? = nil, outputs: [String]? = nil) {
        self.inputs = inputs
        self.outputs = outputs
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case inputs, outputs }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "buffers")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputs = try c.decodeIfPresent([String].self, forKey: .inputs)
        outputs = try c.decodeIfPresent([String].self, forKey: .outputs)
    }
}

/// A job codespec's socket (upstream model; not supported by the local executor).
public struct CodespecSocket: Codable, Hashable, Sendable {
    public var port: Int
    public var inputBuffer: String?
    public var outputBuffer: String?
}

/// Resource requests and limits.
public struct CodespecResources: Codable, Hashable, Sendable {
    public var requests: ResourceQuantities?
    public var limits: ResourceQuantities?
    public var gpu: Quantity?
    public var shm: Quantity?

    public init(
        requests: ResourceQuantities? = nil,
        limits: ResourceQuantities? = nil,
        gpu: Quantity? = nil,
        shm: Quantity? = nil
    ) {
        self.requests = requests
        self.limits = limits
        self.gpu = gpu
        self.shm = shm
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case requests, limits, gpu, shm }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "resources")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requests = try c.decodeIfPresent(ResourceQuantities.self, forKey: .requests)
        limits = try c.decodeIfPresent(ResourceQuantities.self, forKey: .limits)
        gpu = try c.decodeIfPresent(Quantity.self, forKey: .gpu)
        shm = try c.decodeIfPresent(Quantity.self, forKey: .shm)
    }
}

/// CPU and memory quantities (upstream's `OvercommittableResources`).
public struct ResourceQuantities: Codable, Hashable, Sendable {
    public var cpu: Quantity?
    public var memory: Quantity?

    public init(cpu: Quantity? = nil, memory: Quantity? = nil) {
        self.cpu = cpu
        self.memory = memory
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case cpu, memory }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), in: "resources requests/limits")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpu = try c.decodeIfPresent(Quantity.self, forKey: .cpu)
        memory = try c.decodeIfPresent(Quantity.self, forKey: .memory)
    }
}
