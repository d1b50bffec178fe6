import Foundation
public import Logging
import Synchronization
import TygerIO
public import TygerModel
public import TygerRunEngine

/// Settings of a ``SlurmExecutor``.
public struct SlurmExecutorConfiguration: Sendable {
    /// The `tyger` executable as the cluster's machines see it: each job runs `<agent> run-agent`.
    public var agentPath: String
    /// This server's instance ID, written in its jobs' comments (`tyger:<instance>:<run>:<replica>`).
    public var instanceID: String
    /// The user jobs run as (`sbatch --uid`; needs a server running as root or as SlurmUser); `nil`: the server's.
    public var user: String?
    /// The partition of runs that name no node pool; `nil`: the cluster's default.
    public var partition: String?
    /// The account jobs are charged to; `nil`: the user's default.
    public var account: String?
    /// The directory under which a job makes its run's directory (`<scratch>/tyger-run-<id>`) on its machine.
    public var scratch: String = "/tmp"
    /// Where Slurm's client commands are; `nil` searches `PATH`.
    public var binDirectory: String?
    /// How often the jobs' states are looked at (for jobs that end without their agent's report).
    public var pollInterval: Duration = .seconds(1)
    /// How long a job may be gone before its agent's missing report is given up.
    public var reportGrace: Duration = .seconds(2)
    /// How many times a job is submitted while the controller does not answer (each `sbatch` tries for ~10 s).
    public var submitAttempts = 6
    /// Run each job's process in a container of its machine's engine (Docker Engine API, Docker or Podman) at this
    /// address on the machine (`unix:///run/podman/podman.sock`); `nil`: host processes (the codespec's image is not
    /// used).
    public var containerHost: String?
    /// With ``containerHost``: when the machine's engine pulls images (`always`, `missing`, `never`).
    public var containerPull = "missing"
    /// With ``containerHost``: the containers' network (`none`, `host`, a name). Runs with workers use `host`, so
    /// that their endpoints are reached at their machines' addresses.
    public var containerNetwork = "none"
    /// PEM certificates the jobs' agents trust for the server's HTTPS URLs besides their machines' roots.
    public var caCertificate: String?
    /// The environment of Slurm's commands (the server's: it carries `SLURM_CONF`).
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init(agentPath: String, instanceID: String) {
        self.agentPath = agentPath
        self.instanceID = instanceID
    }
}

/// Runs codespecs as Slurm batch jobs, one per replica: each job starts `tyger run-agent`, which makes the run's
/// named pipes where the job runs, moves the run's buffers through their signed access URLs, and reports log lines
/// and the exit code to the server (``RunAgentReceiver``). `squeue` and `scontrol` tell what became of jobs that end
/// without a report (a node that died, a job canceled while queued); `scancel` stops them.
public final class SlurmExecutor: Executor, RunAgentReceiver {
    public let configuration: SlurmExecutorConfiguration
    public let description: ExecutorDescription
    private let commands: SlurmCommands
    private let logger: Logger
    /// A run's job or its workers.
    struct ExecutionKey: Hashable {
        var runId: Int64
        var workers: Bool
    }
    private let executions = Mutex<[ExecutionKey: SlurmExecution]>([:])

    /// Runs with workers: each worker replica is a job of its own (started first, cancelled when the run's job
    /// ends), found on the machine Slurm put it on.
    public var runsWorkers: Bool { true }

    /// Connects to the cluster: its version (`sinfo --version`) and that its controller answers (`sinfo`).
    ///
    /// - Throws: `SlurmError` when the commands are missing or the controller does not answer.
    public init(configuration: SlurmExecutorConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        let commands = SlurmCommands(binDirectory: configuration.binDirectory, environment: configuration.environment)
        self.commands = commands
        let version = try await commands.run("sinfo", ["--version"])
        guard version.code == 0 else { throw SlurmError("sinfo --version failed: \(version.message)") }
        let partitions = try await commands.run("sinfo", ["-h", "-o", "%R"])
        guard partitions.code == 0 else {
            if partitions.isAuthenticationFailure { throw SlurmError(partitions.message) }
            throw SlurmError("the Slurm controller does not answer: \(partitions.message)")
        }
        if let partition = configuration.partition {
            let names = partitions.output.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard names.contains(partition) else {
                throw SlurmError(
                    "the Slurm cluster has no partition '\(partition)' (it has \(names.joined(separator: ", ")))"
                )
            }
        }
        let shown = try await commands.run("scontrol", ["show", "config"])
        guard shown.code == 0 else { throw SlurmError("scontrol show config failed: \(shown.message)") }
        self.clusterName =
            shown.output.split(separator: "\n").lazy.compactMap { line -> String? in
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 && parts[0] == "ClusterName" ? parts[1] : nil
            }.first ?? ""
        let text = version.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let number = text.split(separator: " ").last.map(String.init) ?? text
        self.description = ExecutorDescription(
            kind: "slurm",
            engine: "Slurm \(number)",
            capabilities: ["NodePools", "DistributedRuns"] + (configuration.containerHost != nil ? ["Docker"] : [])
        )
    }

    public var movesOwnBuffers: Bool { true }

    /// The cluster's name (`ClusterName` of `scontrol show config`).
    public let clusterName: String

    /// A run may name this cluster (`--cluster`) and a partition of it as its node pool (`--node-pool`); it records
    /// the cluster's name.
    public func placement(cluster: String?, nodePool: String?) async throws -> String? {
        if let cluster, !cluster.isEmpty, cluster.lowercased() != clusterName.lowercased() {
            throw TygerRunEngineError(.invalidInput, "Unknown cluster '\(cluster)'")
        }
        if let nodePool, !nodePool.isEmpty {
            let listed = try? await commands.run("sinfo", ["-h", "-o", "%R"])
            guard let listed, listed.code == 0 else {
                throw TygerRunEngineError(
                    .invalidInput,
                    "cannot check the node pool '\(nodePool)': the Slurm controller does not answer (\(listed?.message ?? "no answer"))"
                )
            }
            let partitions = Set(listed.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
            guard partitions.contains(nodePool) else {
                throw TygerRunEngineError(.invalidInput, "Unknown nodepool '\(nodePool)'")
            }
        }
        return clusterName.isEmpty ? nil : clusterName
    }

    /// The environment `sbatch` runs in, which is its job's (`--export=ALL`): the jobs' `PATH`, `LANG`, `LC_ALL` and
    /// `TZ` (``processView(runId:pipesDirectory:workDirectory:)``), and of the server's own only what Slurm's
    /// client reads (`SLURM_CONF`, the `SBATCH_*` input variables): no secret of the server's reaches a job.
    ///
    /// Not `--export=NONE`, which would keep the server's environment out just as well: with it Slurm (22.05 at
    /// least) builds the job's environment from a login shell of the job's user (`su - USER -c env` on the node), which
    /// took half a second of every run's start here, and up to its 8 s timeout with a slow profile.
    static func jobEnvironment(_ server: [String: String]) -> [String: String] {
        var environment = jobBaseEnvironment(server)
        for (key, value) in server where key == "SLURM_CONF" || key.hasPrefix("SBATCH_") {
            environment[key] = value
        }
        return environment
    }

    /// `PATH` (default `/usr/local/bin:/usr/bin:/bin`), `LANG`, `LC_ALL` and `TZ` of `server`.
    static func jobBaseEnvironment(_ server: [String: String]) -> [String: String] {
        var base: [String: String] = [:]
        for key in ["PATH", "LANG", "LC_ALL", "TZ"] { if let v = server[key] { base[key] = v } }
        if base["PATH"] == nil { base["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return base
    }

    /// Jobs see the cluster machine's paths: the directory of their replica under the scratch directory
    /// (``runRoot(_:replica:)``, with the pipes and the default working directory), `PATH` (default
    /// `/usr/local/bin:/usr/bin:/bin`), `LANG`, `LC_ALL` and `TZ` of the server; nothing else of its environment.
    public func processView(runId: Int64, pipesDirectory: String, workDirectory: String) -> ProcessView {
        if configuration.containerHost != nil { return .container(runId: runId) }
        let base = Self.jobBaseEnvironment(configuration.environment)
        let root = runRoot(runId, replica: 0)
        return ProcessView(
            pipesDirectory: root + "/pipes",
            workingDirectory: root + "/work",
            inheritedEnvironment: base
        )
    }

    /// `<scratch>/tyger-<instance>-<run>-<replica>`: one directory per replica (replicas may share a machine), named
    /// after this server too (several servers may share a cluster, and run IDs are per server).
    func runRoot(_ runId: Int64, replica: Int, worker: Bool = false) -> String {
        var scratch = configuration.scratch
        while scratch.count > 1 && scratch.hasSuffix("/") { scratch.removeLast() }
        return scratch + "/tyger-\(configuration.instanceID)-\(runId)-\(worker ? "worker-" : "")\(replica)"
    }

    public func pullImage(of codespec: Codespec) async throws {
        throw TygerRunEngineError(
            .invalidInput,
            "This server runs codespecs as Slurm jobs of host processes (--executor slurm): there is no image to pull"
        )
    }

    public func validate(codespec: Codespec, replicas: Int) async throws {
        if configuration.containerHost != nil {
            if codespec.image.trimmingCharacters(in: .whitespaces).isEmpty {
                throw TygerRunEngineError(.invalidInput, "The codespec has no image to run as a container on Slurm")
            }
        } else if (codespec.command ?? []).isEmpty && (codespec.args ?? []).isEmpty {
            throw TygerRunEngineError(
                .invalidInput,
                "The codespec has no command or args: the Slurm executor runs 'command' + 'args' as a host process on the cluster (the image '\(codespec.image)' is not used)"
            )
        }
        if let sockets = codespec.sockets, !sockets.isEmpty {
            throw TygerRunEngineError(.invalidInput, "Codespecs with sockets are not supported by the Slurm executor")
        }
    }

    public func start(_ request: ExecutionRequest, log: RunLogWriter) async throws -> any Execution {
        guard let reportURL = request.reportURL else {
            throw TygerRunEngineError(.executorFailure, "the run has no report URL for its Slurm jobs")
        }
        let key = ExecutionKey(runId: request.runId, workers: request.isWorkers)
        let execution = SlurmExecution(
            runId: request.runId,
            replicas: request.replicas.count,
            log: log,
            commands: commands,
            configuration: configuration
        )
        executions.withLock { $0[key] = execution }
        var jobs: [String] = []
        let jobsFile = request.runDirectory + (request.isWorkers ? "/slurm-worker-jobs" : "/slurm-jobs")
        do {
            for (index, replica) in request.replicas.enumerated() {
                let root = runRoot(request.runId, replica: index, worker: request.isWorkers)
                // The default working directory (the view's, replica 0's) is each replica's own.
                let defaultWork = runRoot(request.runId, replica: 0) + "/work"
                // In a container the codespec's working directory is the container's; the agent's stays its own.
                let containers = configuration.containerHost != nil
                let work =
                    containers
                    ? root + "/work"
                    : replica.workingDirectory.flatMap { $0 == defaultWork ? nil : $0 } ?? root + "/work"
                let hasPipes = index == 0 && !request.isWorkers
                var launch = AgentLaunch(
                    runId: request.runId,
                    replica: index,
                    arguments: replica.arguments,
                    environment: replica.environment,
                    runDirectory: root,
                    workingDirectory: work,
                    // A container mounts a pipes directory, empty for the replicas without buffers.
                    pipesDirectory: hasPipes || containers ? root + "/pipes" : "",
                    buffers: index == 0 && !request.isWorkers ? request.buffers : [],
                    reportURL: reportURL,
                    logPrefix: replica.logPrefix
                )
                launch.worker = request.isWorkers ? true : nil
                launch.expiresAt = request.urlsExpireAt.map { RFC3339.format($0) }
                launch.commandCount = replica.commandCount
                launch.caCertificate = configuration.caCertificate
                if request.isWorkers, !request.workerPortVariables.isEmpty {
                    launch.portVariables = request.workerPortVariables
                }
                if let host = configuration.containerHost {
                    // Workers, and a job that reaches them, are on their machines' networks.
                    let withWorkers = request.isWorkers || replica.environment["TYGER_WORKER_NODES"] != nil
                    launch.container = AgentContainer(
                        host: host,
                        image: request.image,
                        pull: configuration.containerPull,
                        network: withWorkers ? "host" : configuration.containerNetwork,
                        workingDirectory: replica.workingDirectory,
                        instanceID: configuration.instanceID
                    )
                }
                let job = try await submit(launch, request: request, replicas: request.replicas.count)
                jobs.append(job)
                execution.setJob(job, replica: index)
                // Recorded so a restarted server can cancel what this one left behind.
                try? (jobs.joined(separator: "\n") + "\n").write(toFile: jobsFile, atomically: true, encoding: .utf8)
            }
        } catch {
            if !jobs.isEmpty { _ = try? await commands.run("scancel", jobs) }
            executions.withLock { _ = $0.removeValue(forKey: key) }
            if let error = error as? TygerRunEngineError { throw error }
            throw TygerRunEngineError(.executorFailure, "cannot submit the Slurm job: \(error)")
        }
        logger.debug("submitted Slurm jobs", metadata: ["run.id": "\(request.runId)", "jobs": "\(jobs)"])
        execution.startWatching { [weak self] in self?.executions.withLock { _ = $0.removeValue(forKey: key) } }
        return execution
    }

    /// `sbatch` of one replica's job; its ID.
    private func submit(_ launch: AgentLaunch, request: ExecutionRequest, replicas: Int) async throws -> String {
        var arguments = [
            "--parsable", "--export=ALL", "--chdir=" + configuration.scratch, "--output=/dev/null",
            // A job is never run twice (after a node failure or a preemption): its buffers are half written.
            "--nodes=1", "--ntasks=1", "--no-requeue",
            "--job-name=tyger-run-\(request.runId)"
                + (request.isWorkers ? "-worker-\(launch.replica)" : replicas > 1 ? "-\(launch.replica)" : ""),
            "--comment=tyger:\(configuration.instanceID):\(request.runId):"
                + (request.isWorkers ? "worker-" : "") + String(launch.replica),
        ]
        if let deadline = request.deadline {
            let minutes = max(1, Int((deadline.timeIntervalSinceNow / 60).rounded(.up)))
            arguments.append("--time=\(minutes)")
        }
        if let user = configuration.user { arguments.append("--uid=\(user)") }
        if let partition = request.nodePool ?? configuration.partition { arguments.append("--partition=\(partition)") }
        if let account = configuration.account { arguments.append("--account=\(account)") }
        arguments += Self.resourceArguments(request.resources)
        let script = """
            #!/bin/sh
            exec \(Self.quoted(configuration.agentPath)) run-agent <<'TYGER_LAUNCH'
            \(try launch.encoded())
            TYGER_LAUNCH

            """
        // A controller that does not answer (restarting, a network cut) is waited for: sbatch itself tries for about
        // 10 s each time, and it is tried again for about a minute in all before the run fails.
        let environment = Self.jobEnvironment(configuration.environment)
        var result = try await commands.run("sbatch", arguments, input: script, environment: environment)
        var attempts = 1
        while result.code != 0, Self.isUnreachable(result), attempts < configuration.submitAttempts {
            logger.warning(
                "the Slurm controller does not answer; submitting again",
                metadata: ["run.id": "\(request.runId)", "error": "\(result.message)"]
            )
            try? await Task.sleep(for: .seconds(1))
            result = try await commands.run("sbatch", arguments, input: script, environment: environment)
            attempts += 1
        }
        guard result.code == 0 else {
            let tries = attempts > 1 ? " (tried \(attempts) times)" : ""
            throw TygerRunEngineError(.executorFailure, "sbatch refused the job: \(result.message)\(tries)")
        }
        // --parsable prints `<id>` or `<id>;<cluster>`.
        let id = result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(
            String.init
        )
        guard let id, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw TygerRunEngineError(.executorFailure, "sbatch answered no job ID: \(result.output)")
        }
        return id
    }

    /// Whether a command failed because the controller could not be reached (worth trying again).
    static func isUnreachable(_ result: SlurmCommands.Result) -> Bool {
        let text = result.error + result.output
        return text.contains("Unable to contact slurm controller") || text.contains("Socket timed out")
            || text.contains("Connection refused")
    }

    /// `--cpus-per-task`, `--mem` and `--gres` from the codespec's resources (limits first, else requests).
    static func resourceArguments(_ resources: CodespecResources?) -> [String] {
        guard let resources else { return [] }
        var arguments: [String] = []
        if let cpu = (resources.limits?.cpu ?? resources.requests?.cpu)?.value, cpu > 0 {
            arguments.append("--cpus-per-task=\(Int(cpu.rounded(.up)))")
        }
        if let memory = (resources.limits?.memory ?? resources.requests?.memory)?.value, memory > 0 {
            arguments.append("--mem=\(max(1, Int((memory / 1_048_576).rounded(.up))))M")
        }
        if let gpu = resources.gpu?.value, gpu > 0 { arguments.append("--gres=gpu:\(Int(gpu.rounded(.up)))") }
        return arguments
    }

    /// A word for `sh`: single-quoted.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Cancels the jobs a previous server process left for the run (those of the run's record, and those whose
    /// comment names the run and this server or `previousOwner`): their agents' exit reports went to a server that is
    /// gone, so how they ended is not known (`nil`).
    public func recover(runId: Int64, runDirectory: String, previousOwner: String?) async -> [ReplicaExit]? {
        var jobs = Set(
            ["/slurm-jobs", "/slurm-worker-jobs"].flatMap {
                ((try? String(contentsOfFile: runDirectory + $0, encoding: .utf8)) ?? "")
                    .split(separator: "\n").map(String.init).filter { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
            }
        )
        if let listed = try? await commands.run("squeue", ["-h", "-o", "%i|%k"]), listed.code == 0 {
            let prefixes = [configuration.instanceID, previousOwner].compactMap { $0 }.map { "tyger:\($0):\(runId):" }
            for line in listed.output.split(separator: "\n") {
                let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
                if parts.count == 2, prefixes.contains(where: parts[1].hasPrefix) { jobs.insert(parts[0]) }
            }
        }
        if !jobs.isEmpty { _ = try? await commands.run("scancel", jobs.sorted()) }
        return nil
    }

    // MARK: RunAgentReceiver

    /// An agent's log lines; its first report (empty, sent as it starts) says its job runs.
    public func agentLogs(runId: Int64, replica: Int, worker: Bool, lines: [UInt8]) throws {
        let execution = try execution(runId, replica, worker: worker)
        execution.jobStarted()
        execution.appendLogs(lines)
    }

    public func agentExited(runId: Int64, replica: Int, worker: Bool, exit: ReplicaExit) throws {
        let execution = try execution(runId, replica, worker: worker)
        execution.jobStarted()
        execution.agentReported(exit, replica: replica)
    }

    private func execution(_ runId: Int64, _ replica: Int, worker: Bool) throws -> SlurmExecution {
        guard let execution = executions.withLock({ $0[ExecutionKey(runId: runId, workers: worker)] }),
            (0..<execution.replicaCount).contains(replica)
        else {
            throw TygerRunEngineError(
                .notFound,
                "run \(runId) has no \(worker ? "worker" : "replica") \(replica) running on Slurm here"
            )
        }
        return execution
    }
}
