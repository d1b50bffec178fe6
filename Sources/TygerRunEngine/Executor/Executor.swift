public import TygerModel

/// Starts and stops the processes of runs. The engine owns FIFOs, buffer transfers and the lifecycle; an executor
/// only runs processes, so container or Slurm executors can be added beside `LocalProcessExecutor`.
public protocol Executor: Sendable {
    /// Checks at run creation that the executor can honour the codespec (resources, features, a command).
    ///
    /// - Throws: `TygerRunEngineError` `.invalidInput` saying what cannot be honoured.
    func validate(codespec: Codespec, replicas: Int) throws

    /// Starts every replica.
    ///
    /// - Parameters:
    ///   - request: What to run.
    ///   - log: Where the processes' stdout and stderr lines go.
    /// - Returns: The running execution.
    /// - Throws: `TygerRunEngineError` `.executorFailure` when a process cannot be started (any replica already
    ///   started is killed first).
    func start(_ request: ExecutionRequest, log: RunLogWriter) async throws -> any Execution

    /// Kills whatever a previous server process left running for a run (after a restart), using what `start`
    /// recorded in `runDirectory`.
    func recover(runDirectory: String) async
}

/// The processes of one run.
public protocol Execution: Sendable {
    /// How many replicas were started.
    var replicaCount: Int { get }

    /// Waits until replica `replica` exited and its output was logged.
    /// - Returns: The exit code, or 128 + the signal number when a signal killed it.
    func waitForExit(replica: Int) async -> Int32

    /// Stops every replica still running: SIGTERM to its process group, then SIGKILL after `grace`.
    func terminate(grace: Duration) async
}

/// What an executor runs for one run.
public struct ExecutionRequest: Sendable {
    /// The run.
    public var runId: Int64
    /// The run's private directory (0700); executors may keep state there.
    public var runDirectory: String
    /// The image named by the codespec (recorded; the local executor does not use it).
    public var image: String
    /// One entry per replica.
    public var replicas: [ReplicaLaunch]

    public init(runId: Int64, runDirectory: String, image: String, replicas: [ReplicaLaunch]) {
        self.runId = runId
        self.runDirectory = runDirectory
        self.image = image
        self.replicas = replicas
    }
}

/// One process to start.
public struct ReplicaLaunch: Sendable, Hashable {
    /// The program (`arguments[0]`) and its arguments, already expanded.
    public var arguments: [String]
    /// The complete environment.
    public var environment: [String: String]
    /// The working directory.
    public var workingDirectory: String
    /// Put before each log line (empty for single-replica runs).
    public var logPrefix: String

    public init(arguments: [String], environment: [String: String], workingDirectory: String, logPrefix: String) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.logPrefix = logPrefix
    }
}
