import Foundation

/// What a run agent (`tyger run-agent`, started by a cluster job on a machine of its own) needs to run one replica
/// of a run: the process, its buffers' access URLs and where to report. It travels in the job's script as base64
/// JSON, so it holds secrets (signed URLs) and is as private as the job.
public struct AgentLaunch: Sendable, Hashable, Codable {
    /// The document's version; an agent refuses others.
    public static let currentVersion = 1

    public var version: Int
    /// The run.
    public var runId: Int64
    /// The replica (0-based); only replica 0 has the buffers.
    public var replica: Int
    /// The command line, already expanded.
    public var arguments: [String]
    /// The complete environment of the process.
    public var environment: [String: String]
    /// The replica's own directory on its machine (0700): the agent makes it, refuses one that exists, and removes
    /// it with everything in it at the end. The default working directory and the pipes are in it.
    public var runDirectory: String
    /// The working directory; the agent makes it (0700) when it is missing.
    public var workingDirectory: String
    /// Where the named pipes are made (0700, inside `runDirectory`); empty when there are no buffers.
    public var pipesDirectory: String
    /// The buffers, with their access URLs and pipes.
    public var buffers: [BufferLaunch]
    /// The signed base URL of the reports: `POST <path>/logs?<query>&replica=N`, `POST <path>/exit?<query>&replica=N`
    /// (`worker=N` for a worker).
    public var reportURL: String
    /// Put before each log line.
    public var logPrefix: String
    /// Whether this is a replica of the run's workers (its reports say `worker=N` instead of `replica=N`).
    public var worker: Bool?
    /// When the signed URLs (reports and buffers) expire (RFC 3339); before that the agent renews them all at
    /// `<report path>/renew` (``AgentRenewal``). `nil` (an older server): no renewal.
    public var expiresAt: String?
    /// How many of ``arguments`` are the codespec's `command` (the rest are its `args`); a container's entrypoint
    /// and command. `nil`: all of them are the command.
    public var commandCount: Int?
    /// Run the process in a container of the machine's engine instead of as a host process; the pipes named by
    /// ``buffers`` are then paths inside it (``ProcessView/containerPipesDirectory(runId:)``), made in
    /// ``pipesDirectory`` under the same names and mounted there.
    public var container: AgentContainer?
    /// PEM certificates the agent trusts for the server's HTTPS URLs besides the system's roots (a server with a
    /// certificate of its own CA: `--slurm-ca-cert`).
    public var caCertificate: String?
    /// For a worker: the variables of ``environment`` that carry its endpoints' ports, taken on the server's machine;
    /// the agent checks that they are free where the job runs before it starts the worker.
    public var portVariables: [String]?

    public init(
        runId: Int64,
        replica: Int,
        arguments: [String],
        environment: [String: String],
        runDirectory: String,
        workingDirectory: String,
        pipesDirectory: String,
        buffers: [BufferLaunch],
        reportURL: String,
        logPrefix: String
    ) {
        self.version = Self.currentVersion
        self.runId = runId
        self.replica = replica
        self.arguments = arguments
        self.environment = environment
        self.runDirectory = runDirectory
        self.workingDirectory = workingDirectory
        self.pipesDirectory = pipesDirectory
        self.buffers = buffers
        self.reportURL = reportURL
        self.logPrefix = logPrefix
    }

    /// A route under the signed report URL: `<report path>/<suffix>?<report query>[&<query>]`; the signature covers
    /// the run, so every route under it carries the same query.
    public static func url(under reportURL: String, _ suffix: String, query: String? = nil) -> String {
        let parts = reportURL.split(separator: "?", maxSplits: 1).map(String.init)
        var path = parts[0]
        while path.hasSuffix("/") { path.removeLast() }
        let queries = (parts.count > 1 ? [parts[1]] : []) + (query.map { [$0] } ?? [])
        return path + "/" + suffix + (queries.isEmpty ? "" : "?" + queries.joined(separator: "&"))
    }

    /// The relay of an ephemeral buffer for the agent: `<report path>/pipes/<parameter>?<report query>`.
    public static func pipeURL(reportURL: String, parameter: String) -> String {
        url(under: reportURL, "pipes/" + parameter)
    }

    /// The document as one line of base64 (what the job script carries).
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(self).base64EncodedString()
    }

    /// Reads a document written by ``encoded()``.
    ///
    /// - Throws: `TygerRunEngineError` `.invalidInput` when it is not one, or of another version.
    public static func decode(_ text: String) throws -> AgentLaunch {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed) else {
            throw TygerRunEngineError.invalid("the launch document is not base64")
        }
        let launch: AgentLaunch
        do {
            launch = try JSONDecoder().decode(AgentLaunch.self, from: data)
        } catch {
            throw TygerRunEngineError.invalid("the launch document is not valid: \(error)")
        }
        guard launch.version == currentVersion else {
            throw TygerRunEngineError.invalid(
                "the launch document has version \(launch.version); this agent reads version \(currentVersion)"
            )
        }
        return launch
    }
}

/// Fresh signed URLs for a run's agent (`POST <report path>/renew?<report query>&replica=N`, or `worker=N`): a run
/// may outlast one URL's lifetime (at most 24 hours), so its agent renews them before they expire, with the URL it
/// holds.
public struct AgentRenewal: Sendable, Hashable, Codable {
    /// The new signed base URL of the reports (and of the relays of ephemeral buffers).
    public var reportURL: String
    /// The new access URL of each stored buffer, by parameter name.
    public var buffers: [String: String]
    /// When these URLs expire (RFC 3339).
    public var expiresAt: String

    public init(reportURL: String, buffers: [String: String], expiresAt: String) {
        self.reportURL = reportURL
        self.buffers = buffers
        self.expiresAt = expiresAt
    }
}

/// A run agent's process as a container (`--slurm-container-host`): the engine on the job's machine and what to run.
public struct AgentContainer: Sendable, Hashable, Codable {
    /// The engine's address on the job's machine (`unix:///run/podman/podman.sock`).
    public var host: String
    /// The codespec's image.
    public var image: String
    /// When the engine pulls it: `always`, `missing` or `never`.
    public var pull: String
    /// `none`, `host` or a network's name.
    public var network: String
    /// The codespec's working directory; `nil`: the image's.
    public var workingDirectory: String?
    /// The server's instance, on the container's labels.
    public var instanceID: String

    public init(
        host: String,
        image: String,
        pull: String,
        network: String,
        workingDirectory: String?,
        instanceID: String
    ) {
        self.host = host
        self.image = image
        self.pull = pull
        self.network = network
        self.workingDirectory = workingDirectory
        self.instanceID = instanceID
    }
}
