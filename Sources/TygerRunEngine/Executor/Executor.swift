public import Foundation
public import TygerModel

/// Starts and stops the processes of runs. The engine owns FIFOs, buffer transfers and the lifecycle; an executor
/// only runs processes (host processes, containers), behind this one protocol.
public protocol Executor: Sendable {
    /// What `tyger api status` and `/metadata` say of the executor (`process`, `docker`), with the engine's name and
    /// version where there is one.
    var description: ExecutorDescription { get }

    /// How a run's processes see the run: where its pipe directory appears to them, their default working directory
    /// and what they inherit from the server's environment.
    ///
    /// - Parameters:
    ///   - runId: The run.
    ///   - pipesDirectory: The host directory holding the run's FIFOs (`<name>.pipe`).
    ///   - workDirectory: A private, empty host directory for the run.
    func processView(runId: Int64, pipesDirectory: String, workDirectory: String) -> ProcessView

    /// Checks at run creation that the executor can honour the codespec (resources, features, a command, its image).
    ///
    /// - Throws: `TygerRunEngineError` `.invalidInput` saying what cannot be honoured.
    func validate(codespec: Codespec, replicas: Int) async throws

    /// Pulls the codespec's image now, whatever the engine has (`run create --pull`), within what the server's pull
    /// policy allows.
    ///
    /// - Throws: `TygerRunEngineError` `.invalidInput` when the executor has no images or does not pull, or the pull
    ///   fails (naming the image and the engine's reason).
    func pullImage(of codespec: Codespec) async throws

    /// Starts every replica.
    ///
    /// - Parameters:
    ///   - request: What to run.
    ///   - log: Where the processes' stdout and stderr lines go.
    /// - Returns: The running execution.
    /// - Throws: `TygerRunEngineError` `.executorFailure` when a process cannot be started (any replica already
    ///   started is killed first).
    func start(_ request: ExecutionRequest, log: RunLogWriter) async throws -> any Execution

    /// Checks at run creation where the run asks to run (`--cluster`, `--node-pool`).
    ///
    /// - Returns: The cluster to record in the run (`nil` for executors without clusters).
    /// - Throws: `TygerRunEngineError` `.invalidInput` for a cluster or node pool the executor does not have
    ///   (upstream's `Unknown cluster 'x'`, `Unknown nodepool 'x'`).
    func placement(cluster: String?, nodePool: String?) async throws -> String?

    /// Whether runs with workers (upstream's distributed runs) can run here: the workers are started as replicas of
    /// their own on this machine, each endpoint on a port of its own on loopback (``WorkerEndpoints``).
    var runsWorkers: Bool { get }

    /// Whether the executor's processes move their buffers themselves (a cluster job on another machine, through
    /// the access URLs in ``ExecutionRequest/buffers``). The engine then makes no named pipes of stored buffers and
    /// runs no transfers for them; an ephemeral buffer (`_`) keeps its named pipe here, whose process side the
    /// executor's processes stream through the server (``RunEngine/withAgentInputPipe(runId:parameter:_:)``).
    var movesOwnBuffers: Bool { get }

    /// Reconciles what a previous server process left for a run (after a restart), using what `start` recorded in
    /// `runDirectory` or the engine's labels: whatever still runs is killed, and everything is removed.
    ///
    /// - Parameter previousOwner: For a run taken over from another server (servers sharing a database), that
    ///   server's instance ID; `nil` for this server's own leftovers. An executor whose jobs carry their server's
    ///   instance and can be reached from here (the Slurm executor) looks for the previous owner's too.
    /// - Returns: How each replica ended, when every one had ended by itself (a container keeps its exit status
    ///   after the server that ran it died); `nil` when a replica was still running or nothing is known.
    func recover(runId: Int64, runDirectory: String, previousOwner: String?) async -> [ReplicaExit]?
}

extension Executor {
    /// Executors on one machine have no clusters or node pools: they take what upstream's local mode takes and
    /// record no cluster.
    public func placement(cluster: String?, nodePool: String?) async throws -> String? { nil }

    public var runsWorkers: Bool { false }
    public var movesOwnBuffers: Bool { false }
}

/// An executor whose processes report to the server over HTTP (``AgentLaunch``): their log lines and how they
/// ended. The server's agent routes hand the reports here after checking their signature.
public protocol RunAgentReceiver: Sendable {
    /// Log lines of a replica, each `<RFC 3339 stamp> <text>` and ended by a newline, as the agent's log has them.
    ///
    /// - Throws: `TygerRunEngineError` `.notFound` when the run has no live execution here.
    /// `worker`: a replica of the run's workers (of its job otherwise).
    ///
    /// - Throws: `TygerRunEngineError` `.notFound` when the run has no live execution here.
    func agentLogs(runId: Int64, replica: Int, worker: Bool, lines: [UInt8]) throws

    /// How a replica ended: the process's exit code, and why in a few words when the agent knows more (a buffer
    /// transfer that failed).
    ///
    /// - Throws: `TygerRunEngineError` `.notFound` when the run has no live execution here.
    func agentExited(runId: Int64, replica: Int, worker: Bool, exit: ReplicaExit) throws
}

/// What an executor is, for `/metadata` and `tyger api status`.
public struct ExecutorDescription: Sendable, Hashable {
    /// `process` or `docker`.
    public var kind: String
    /// The engine behind it (`Docker Engine 27.1.1`, `Podman Engine 4.3.1`), when there is one.
    public var engine: String?
    /// Upstream's capability names this executor adds (`Docker`, `Gpu`).
    public var capabilities: [String]

    public init(kind: String, engine: String? = nil, capabilities: [String] = []) {
        self.kind = kind
        self.engine = engine
        self.capabilities = capabilities
    }
}

/// How a run's processes see it (see ``Executor/processView(runId:pipesDirectory:workDirectory:)``).
public struct ProcessView: Sendable, Hashable {
    /// Where the run's pipe directory appears to the processes.
    public var pipesDirectory: String
    /// The working directory when the codespec names none; `nil` keeps the image's.
    public var workingDirectory: String?
    /// Variables the processes get before the codespec's and the run's own.
    public var inheritedEnvironment: [String: String]

    public init(pipesDirectory: String, workingDirectory: String?, inheritedEnvironment: [String: String]) {
        self.pipesDirectory = pipesDirectory
        self.workingDirectory = workingDirectory
        self.inheritedEnvironment = inheritedEnvironment
    }

    /// Where a run's pipe directory appears inside its containers (upstream's path), for every executor that runs
    /// containers.
    public static func containerPipesDirectory(runId: Int64) -> String { "/run/secrets/\(runId)/pipes" }

    /// What a run's containers see: the pipes at ``containerPipesDirectory(runId:)``, the image's working directory,
    /// nothing of the host's environment.
    public static func container(runId: Int64) -> ProcessView {
        ProcessView(
            pipesDirectory: containerPipesDirectory(runId: runId),
            workingDirectory: nil,
            inheritedEnvironment: [:]
        )
    }
}

/// The processes of one run.
public protocol Execution: Sendable {
    /// How many replicas were started.
    var replicaCount: Int { get }

    /// Waits until replica `replica` exited and its output was logged.
    /// - Returns: The exit code (128 + the signal number when a signal killed it) and, when the executor knows more
    ///   than the code says (the OOM killer), a few words on why.
    func waitForExit(replica: Int) async -> ReplicaExit

    /// Stops every replica still running: SIGTERM, then SIGKILL after `grace`.
    func terminate(grace: Duration) async

    /// The image the replicas run, as the engine identified it; `nil` for host processes.
    var executedImage: ExecutedImage? { get }

    /// Whether the replicas may wait in a queue before they run (a cluster's jobs): the run then stays `Pending` until
    /// ``queueReasons()`` ends. `false` (the default): they run once `start` returns.
    var startsQueued: Bool { get }

    /// Why the replicas are still queued, in words, each time that changes (the run's status reason while `Pending`);
    /// the stream ends once the first replica runs. Asked once, and only when ``startsQueued``.
    func queueReasons() -> AsyncStream<String>

    /// For workers: the network the job's replicas must join to reach them on loopback (a container engine's
    /// `container:<id>`); `nil` (the default) when that is the host's loopback.
    var sharedNetwork: String? { get }

    /// For workers: whether something accepts TCP connections on `port` of worker replica `replica`, seen from where
    /// the job will connect. The default connects to the host's `127.0.0.1:port`.
    func accepts(replica: Int, port: Int) async -> Bool

    /// For workers: the host of each replica, for the job's `TYGER_WORKER_NODES` and endpoint addresses; `nil` (the
    /// default) for loopback, or while not every replica's host is known (see ``placesWorkers``).
    func workerHosts() async -> [String]?

    /// For workers: whether their hosts come from where the cluster placed them (``workerHosts()`` is `nil` until
    /// then, and the job waits for it as for the endpoints). `false` (the default): loopback.
    var placesWorkers: Bool { get }
}

extension Execution {
    public var executedImage: ExecutedImage? { nil }
    public var startsQueued: Bool { false }
    public func queueReasons() -> AsyncStream<String> { AsyncStream { $0.finish() } }
    public var sharedNetwork: String? { nil }
    public func accepts(replica: Int, port: Int) async -> Bool { WorkerEndpoints.accepts(port: port) }
    public func workerHosts() async -> [String]? { nil }
    public var placesWorkers: Bool { false }
}

/// How a replica ended.
public struct ReplicaExit: Sendable, Hashable {
    /// The exit code, or 128 + the signal number.
    public var code: Int32
    /// Why, in a few words, when the code alone does not say (`killed by the OOM killer`).
    public var detail: String?

    public init(code: Int32, detail: String? = nil) {
        self.code = code
        self.detail = detail
    }
}

/// What an executor runs for one run.
public struct ExecutionRequest: Sendable {
    /// The run.
    public var runId: Int64
    /// The run's private directory (0700); executors may keep state there.
    public var runDirectory: String
    /// The host directory of the run's FIFOs.
    public var pipesDirectory: String
    /// The image named by the codespec (the process executor records it only).
    public var image: String
    /// The codespec's resources (the container executor maps them to the engine's limits).
    public var resources: CodespecResources?
    /// One entry per replica.
    public var replicas: [ReplicaLaunch]
    /// For an executor that ``Executor/movesOwnBuffers``: each buffer parameter with an access URL (read-only for
    /// inputs) valid until ``deadline``; empty otherwise.
    public var buffers: [BufferLaunch] = []
    /// For an executor that ``Executor/movesOwnBuffers``: the signed base URL its processes report to
    /// (`<base>/logs`, `<base>/exit`, with the query kept).
    public var reportURL: String?
    /// When ``reportURL`` and the buffers' URLs expire; the agent renews them before (``AgentRenewal``).
    public var urlsExpireAt: Date?
    /// The run's deadline (creation + timeout).
    public var deadline: Date?
    /// The run's `job.nodePool`, for executors that place processes (a Slurm partition).
    public var nodePool: String?
    /// Whether these are the run's workers (the job's replicas otherwise).
    public var isWorkers = false
    /// For workers: the variables that carry their endpoints' ports (`TYGER_<ENDPOINT>_PORT`).
    public var workerPortVariables: [String] = []
    /// The run's replica index of ``replicas``' first (a run agent starts one replica of many: its container is named
    /// and labelled after it).
    public var firstReplica = 0
    /// For the job of a run with workers: the network its replicas join to reach them on loopback, the workers'
    /// ``Execution/sharedNetwork``.
    public var network: String?

    public init(
        runId: Int64,
        runDirectory: String,
        pipesDirectory: String,
        image: String,
        resources: CodespecResources? = nil,
        replicas: [ReplicaLaunch]
    ) {
        self.runId = runId
        self.runDirectory = runDirectory
        self.pipesDirectory = pipesDirectory
        self.image = image
        self.resources = resources
        self.replicas = replicas
    }
}

/// One process to start.
public struct ReplicaLaunch: Sendable, Hashable {
    /// The codespec's `command` then its `args`, already expanded.
    public var arguments: [String]
    /// How many of `arguments` come from `command` (a container's entrypoint; 0 keeps the image's).
    public var commandCount: Int
    /// The environment, complete for a host process; a container adds it to its image's.
    public var environment: [String: String]
    /// The working directory; `nil` keeps the image's.
    public var workingDirectory: String?
    /// Put before each log line (empty for single-replica runs).
    public var logPrefix: String

    public init(
        arguments: [String],
        commandCount: Int? = nil,
        environment: [String: String],
        workingDirectory: String?,
        logPrefix: String
    ) {
        self.arguments = arguments
        self.commandCount = commandCount ?? arguments.count
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.logPrefix = logPrefix
    }

    /// The entrypoint of a container: the expanded `command`, or `nil` to keep the image's.
    public var command: [String]? { commandCount > 0 ? Array(arguments[..<commandCount]) : nil }
    /// The expanded `args`.
    public var args: [String] { Array(arguments[commandCount...]) }
}

/// One buffer parameter of a run whose executor moves its own buffers.
public struct BufferLaunch: Sendable, Hashable, Codable {
    /// The parameter's name.
    public var name: String
    /// Whether the process reads it.
    public var isInput: Bool
    /// Its signed access URL (read-only for an input).
    public var url: String
    /// The named pipe the process opens (`<NAME>_PIPE`), as the process sees it.
    public var pipe: String
    /// Whether `url` is a relay (an ephemeral buffer: `PUT` streams the output, `GET` streams the input) rather
    /// than a buffer's access URL.
    public var isRelayed: Bool

    public init(name: String, isInput: Bool, url: String, pipe: String, isRelayed: Bool = false) {
        self.name = name
        self.isInput = isInput
        self.url = url
        self.pipe = pipe
        self.isRelayed = isRelayed
    }
}
