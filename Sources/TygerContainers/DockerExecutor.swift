import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TygerIO
public import TygerModel
public import TygerRunEngine

#if canImport(Glibc)
private import Glibc
#endif

/// When the executor pulls a codespec's image.
public enum ImagePullPolicy: String, Sendable, CaseIterable {
    /// Before every run, so a moving tag runs its newest image.
    case always
    /// When the engine does not have the image (the default).
    case missing
    /// Never: a run whose image the engine does not have is refused at creation.
    case never
}

/// Settings of a ``DockerExecutor``.
public struct DockerExecutorConfiguration: Sendable {
    /// The engine's address: `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`.
    public var host: String
    /// When images are pulled.
    public var pull: ImagePullPolicy = .missing
    /// `none`, `host` or a network's name.
    public var network: String = "none"
    /// Leaves finished containers in the engine (for debugging) instead of removing them.
    public var keepContainers = false
    /// Runs an init process (Docker's `docker-init`, Podman's `catatonit`) as each container's PID 1, so SIGTERM
    /// reaches the codespec's process: a shell as PID 1 ignores it, and a cancel or timeout would wait for the
    /// SIGKILL after the grace period.
    public var initProcess = true
    /// This server's instance: its containers carry it in a label, and it touches no container without it.
    public var instanceID: String

    public init(host: String, instanceID: String) {
        self.host = host
        self.instanceID = instanceID
    }

    /// `$DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    public static var defaultHost: String {
        if let host = ProcessInfo.processInfo.environment["DOCKER_HOST"], !host.isEmpty { return host }
        return "unix:///var/run/docker.sock"
    }
}

/// Runs codespecs as containers through the Docker Engine API (Docker or Podman): one container per replica,
/// labelled with the run, the replica and this server's instance.
///
/// - The codespec's `command` becomes the entrypoint and `args` the command; an empty `command` keeps the image's
///   entrypoint. The working directory is the image's unless the codespec names one.
/// - The environment is the image's plus the codespec's plus the pipe variables and `TYGER_RUN_ID`,
///   `TYGER_REPLICA_INDEX`, `TYGER_REPLICA_COUNT`; nothing of the server's own.
/// - The run's FIFO directory is bind-mounted at `/run/secrets/<run>/pipes` (upstream's path), with the FIFOs
///   open to any user of the image.
/// - Logs come from the engine's log stream (stdout and stderr, with the engine's timestamps) into the run's log.
/// - Stopping sends SIGTERM, then SIGKILL after the grace period; finished containers are removed.
public final class DockerExecutor: Executor {
    public let configuration: DockerExecutorConfiguration
    let client: DockerEngineClient
    let logger: Logger
    /// Whether the engine has the NVIDIA runtime (for `resources.gpu`).
    let hasGPU: Bool

    /// Label keys on every container this executor creates.
    public enum Label {
        public static let run = "tyger-run"
        public static let replica = "tyger-replica"
        public static let instance = "tyger-instance"
        /// `true` on the containers of a run's workers.
        public static let worker = "tyger-worker"
    }

    /// Runs with workers: worker containers, the first in the configured network and the others in its network
    /// namespace, so that they and the job (which joins it too) share one loopback, as the process executor's workers
    /// share the host's.
    public var runsWorkers: Bool { true }

    /// Connects to the engine (negotiating its API version) and learns whether it can run GPU containers.
    ///
    /// - Throws: `DockerEngineError` when the engine cannot be reached or is too old.
    public init(configuration: DockerExecutorConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        client = try await DockerEngineClient.connect(host: configuration.host)
        var gpu = false
        if let info = try? await client.request(.GET, "/info"),
            let object = try? JSONSerialization.jsonObject(with: info.body) as? [String: Any],
            let runtimes = object["Runtimes"] as? [String: Any]
        {
            gpu = runtimes["nvidia"] != nil
        }
        hasGPU = gpu
    }

    public var description: ExecutorDescription {
        ExecutorDescription(
            kind: "docker",
            engine: client.engineName,
            capabilities: (hasGPU ? ["Docker", "Gpu"] : ["Docker"]) + ["DistributedRuns"]
        )
    }

    /// Where the run's pipe directory appears inside its containers (upstream's path).
    public static func pipesDirectory(runId: Int64) -> String { ProcessView.containerPipesDirectory(runId: runId) }

    public func processView(runId: Int64, pipesDirectory: String, workDirectory: String) -> ProcessView {
        .container(runId: runId)
    }

    /// Refuses a codespec whose image is not a valid reference, naming the image and what is wrong.
    private static func checkReference(of codespec: Codespec) throws {
        if let problem = ImageReference.problem(codespec.image) {
            throw TygerRunEngineError(
                .invalidInput,
                "The image '\(codespec.image)' is not a valid reference: \(problem)"
            )
        }
    }

    public func validate(codespec: Codespec, replicas: Int) async throws {
        try Self.checkReference(of: codespec)
        if let sockets = codespec.sockets, !sockets.isEmpty {
            throw TygerRunEngineError(.invalidInput, "Codespecs with sockets are not supported by the docker executor")
        }
        if let gpu = codespec.resources?.gpu, let value = gpu.value, value > 0, !hasGPU {
            throw TygerRunEngineError(
                .invalidInput,
                "The codespec requests GPUs (gpu: \(gpu.text)) but the container engine (\(client.engineName)) has no "
                    + "NVIDIA runtime, so the run cannot be honoured"
            )
        }
        if configuration.pull == .never {
            let found: Bool
            do {
                found = try await image(codespec.image) != nil
            } catch {
                throw TygerRunEngineError(.executorFailure, "\(error)")
            }
            if !found {
                throw TygerRunEngineError(
                    .invalidInput,
                    "The image '\(codespec.image)' was not found on the system, and this server does not pull "
                        + "images (--pull never). Pull it into the engine and try again."
                )
            }
        }
    }

    public func pullImage(of codespec: Codespec) async throws {
        try Self.checkReference(of: codespec)
        guard configuration.pull != .never else {
            throw TygerRunEngineError(
                .invalidInput,
                "This server does not pull images (--pull never): the image '\(codespec.image)' must be in the engine"
            )
        }
        do {
            try await pull(codespec.image)
        } catch let error as TygerRunEngineError {
            throw TygerRunEngineError(.invalidInput, error.message)
        }
    }

    /// The engine's identity of a local image, or `nil` when the engine does not have it.
    func image(_ reference: String) async throws -> ExecutedImage? {
        let (status, body) = try await client.request(.GET, "/images/\(reference)/json")
        if status == 404 { return nil }
        guard status == 200, let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let id = object["Id"] as? String
        else {
            throw DockerEngineError(status: status, what: "inspecting the image '\(reference)'", body: body)
        }
        let digests = object["RepoDigests"] as? [String] ?? []
        // The digest of the repository the reference names (an image pulled from several places has several).
        var repository = reference.split(separator: "@").first.map(String.init) ?? reference
        if let colon = repository.lastIndex(of: ":"), !repository[colon...].contains("/") {
            repository = String(repository[..<colon])
        }
        let matching = digests.first { digest in
            let name = digest.split(separator: "@").first.map(String.init) ?? ""
            return name == repository || name.hasSuffix("/" + repository)
        }
        return ExecutedImage(reference: reference, imageId: id, repoDigest: matching ?? digests.first)
    }

    /// Pulls `reference`, reading the engine's progress stream to its end.
    ///
    /// - Throws: `TygerRunEngineError` `.executorFailure` naming the image and the engine's reason.
    func pull(_ reference: String) async throws {
        var errorMessage: String?
        var pending: [UInt8] = []
        // A credential helper is a process to run and wait for: not on the cooperative threads.
        let credentials = try await DedicatedThread.run { RegistryCredentials.header(for: reference) }
        do {
            try await client.stream(
                .POST,
                "/images/create",
                query: [("fromImage", reference)],
                headers: credentials.map { [("X-Registry-Auth", $0)] } ?? [],
                timeout: .minutes(30),
                what: "pulling the image '\(reference)'"
            ) { chunk in
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = Data(pending[..<newline])
                    pending.removeSubrange(...newline)
                    if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                        let error = object["error"] as? String ?? (object["errorDetail"] as? [String: Any])?["message"]
                            as? String
                    {
                        errorMessage = error
                    }
                }
            }
        } catch let error as DockerEngineError {
            throw TygerRunEngineError(.executorFailure, "cannot pull the image '\(reference)': \(error.message)")
        }
        if let errorMessage {
            throw TygerRunEngineError(.executorFailure, "cannot pull the image '\(reference)': \(errorMessage)")
        }
    }

    /// Makes sure the engine has the image as the pull policy says; returns what it is.
    func ensureImage(_ reference: String) async throws -> ExecutedImage {
        do {
            if configuration.pull == .always { try await pull(reference) }
            if let found = try await image(reference) { return found }
            guard configuration.pull == .missing else {
                throw TygerRunEngineError(
                    .executorFailure,
                    "the image '\(reference)' was not found on the system (pull policy: \(configuration.pull.rawValue))"
                )
            }
            try await pull(reference)
            guard let pulled = try await image(reference) else {
                throw TygerRunEngineError(.executorFailure, "the image '\(reference)' is missing after its pull")
            }
            return pulled
        } catch let error as DockerEngineError {
            throw TygerRunEngineError(.executorFailure, error.message)
        }
    }

    public func start(_ request: ExecutionRequest, log: RunLogWriter) async throws -> any Execution {
        let image = try await ensureImage(request.image)
        // The image's user may not be root: the FIFOs must be open to it. The run directory above stays 0700, so
        // nobody on the host gets through.
        _ = chmod(request.pipesDirectory, 0o711)
        if let names = try? FileManager.default.contentsOfDirectory(atPath: request.pipesDirectory) {
            for name in names { _ = chmod(request.pipesDirectory + "/" + name, 0o666) }
        }
        var created: [String] = []
        var waits: [Task<Bool, Never>] = []
        do {
            for (index, replica) in request.replicas.enumerated() {
                // Workers after the first join its network namespace (unless all are on the host's).
                let network =
                    request.isWorkers && index > 0 && configuration.network != "host"
                    ? "container:\(created[0])" : (request.network ?? configuration.network)
                created.append(
                    try await createContainer(
                        request,
                        image: image,
                        replica: replica,
                        index: request.firstReplica + index,
                        network: network
                    )
                )
            }
            // On Docker each wait is under way before its container starts: the engine then reports the exit at
            // once, where a wait that begins after it may miss it (it waits for the next exit). Podman's own wait
            // (``podmanWait``) waits for a state and is sent after the start.
            var responses: [HTTPClientResponse] = []
            if !client.isPodman4 {
                for id in created {
                    responses.append(
                        try await client.open(
                            .POST,
                            "/containers/\(id)/wait",
                            query: [("condition", "next-exit")],
                            what: "waiting for the container"
                        )
                    )
                }
            }
            for id in created {
                try await client.expectSuccess(.POST, "/containers/\(id)/start", what: "starting the container")
            }
            waits =
                client.isPodman4
                ? created.map { id in Task { await Self.podmanWait(id, client: client) } }
                : responses.map { response in Task { (try? await response.body.collect(upTo: 1 << 20)) != nil } }
        } catch {
            for id in created { await remove(id) }
            if let e = error as? DockerEngineError { throw TygerRunEngineError(.executorFailure, e.message) }
            throw error
        }
        let limit = request.resources?.limits?.memory ?? request.resources?.requests?.memory
        return DockerExecution(
            executor: self,
            containers: created,
            sharedNetwork: request.isWorkers && configuration.network != "host" ? "container:\(created[0])" : nil,
            waits: waits,
            launches: request.replicas,
            memoryLimit: limit?.text,
            image: image,
            log: log
        )
    }

    /// Waits for a started container's exit through Podman's own API; false when the engine would not say.
    ///
    /// Podman answers Docker's wait by looking at the container every 250 ms (a hello run's exit reached the server
    /// 0-250 ms late, 125 ms on average); its own wait takes the interval, and waits for a state rather than the next
    /// exit event, so a wait sent after the start cannot miss an exit. Looking every 10 ms costs Podman 7 % of a core
    /// per container (measured), so that lasts only the first 3 s, where short runs end; then every 250 ms, as
    /// Docker's wait. Podman stops looking when the request is canceled.
    static func podmanWait(_ id: String, client: DockerEngineClient) async -> Bool {
        func wait(every interval: String) async -> Bool {
            do {
                let response = try await client.open(
                    .POST,
                    "/containers/\(id)/wait",
                    query: [("condition", "exited"), ("interval", interval)],
                    libpod: true,
                    what: "waiting for the container"
                )
                _ = try await response.body.collect(upTo: 1 << 20)
                return true
            } catch {
                return false
            }
        }
        let fast = Task { await wait(every: "10ms") }
        let timer = Task {
            try? await Task.sleep(for: .seconds(3))
            fast.cancel()
        }
        let answered = await withTaskCancellationHandler {
            await fast.value
        } onCancel: {
            fast.cancel()
        }
        timer.cancel()
        if answered { return true }
        if Task.isCancelled { return false }
        return await wait(every: "250ms")
    }

    /// Creates the container of one replica from the image's ID, so what runs is what the run records even when
    /// the tag moves meanwhile.
    private func createContainer(
        _ request: ExecutionRequest,
        image: ExecutedImage,
        replica: ReplicaLaunch,
        index: Int,
        network: String
    ) async throws -> String {
        var labels = [
            Label.run: String(request.runId),
            Label.replica: String(index),
            Label.instance: configuration.instanceID,
        ]
        if request.isWorkers { labels[Label.worker] = "true" }
        var config: [String: Any] = [
            "Image": image.imageId,
            "Env": replica.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            "Labels": labels,
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "OpenStdin": false, "Tty": false,
        ]
        if let command = replica.command {
            config["Entrypoint"] = command
            config["Cmd"] = replica.args
        } else if !replica.args.isEmpty {
            config["Cmd"] = replica.args
        }
        if let workingDirectory = replica.workingDirectory { config["WorkingDir"] = workingDirectory }
        var hostConfig: [String: Any] = [
            "Binds": ["\(request.pipesDirectory):\(Self.pipesDirectory(runId: request.runId))"],
            "NetworkMode": network,
            "Init": configuration.initProcess,
        ]
        let resources = request.resources
        if let memory = (resources?.limits?.memory ?? resources?.requests?.memory)?.value, memory > 0 {
            hostConfig["Memory"] = Int64(memory)
        }
        if let cpu = (resources?.limits?.cpu ?? resources?.requests?.cpu)?.value, cpu > 0 {
            hostConfig["NanoCpus"] = Int64(cpu * 1e9)
        }
        if let shm = resources?.shm?.value, shm > 0 { hostConfig["ShmSize"] = Int64(shm) }
        if let gpu = resources?.gpu?.value, gpu > 0 {
            hostConfig["DeviceRequests"] = [["Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]]]
        }
        config["HostConfig"] = hostConfig
        let name =
            "tyger-\(configuration.instanceID.prefix(12))-run-\(request.runId)-\(request.isWorkers ? "worker-" : "")\(index)"
        let body = try await client.expectSuccess(
            .POST,
            "/containers/create",
            query: [("name", name)],
            json: config,
            what: "creating the container of replica \(index)"
        )
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let id = object["Id"] as? String
        else {
            throw DockerEngineError("the engine created a container without saying its ID")
        }
        return id
    }

    /// Removes a container, running or not (nothing when `keepContainers`).
    func remove(_ id: String) async {
        if configuration.keepContainers {
            _ = try? await client.request(.POST, "/containers/\(id)/kill", query: [("signal", "SIGKILL")])
            return
        }
        // An engine still cleaning up after the exit can refuse the removal for a moment (409, 500): try again.
        for attempt in 0..<20 {
            let answer = try? await client.request(
                .DELETE,
                "/containers/\(id)",
                query: [("force", "true"), ("v", "true")]
            )
            if let status = answer?.status, status < 300 || status == 404 { return }
            try? await Task.sleep(for: .milliseconds(100 * (attempt + 1)))
        }
        logger.warning("cannot remove a finished container", metadata: ["container": "\(id)"])
    }

    /// Reconciles the containers a previous server left for the run: those carrying this server's instance label
    /// and the run's, never another server's (`previousOwner` included: its containers are in its own engine, as
    /// far as this executor knows). When every one had exited by itself, their exits are returned; any still running
    /// is killed. All are removed (unless `keepContainers`).
    public func recover(runId: Int64, runDirectory: String, previousOwner: String?) async -> [ReplicaExit]? {
        let filters = "{\"label\":[\"\(Label.run)=\(runId)\",\"\(Label.instance)=\(configuration.instanceID)\"]}"
        guard
            let (status, body) = try? await client.request(
                .GET,
                "/containers/json",
                query: [("all", "true"), ("filters", filters)]
            ),
            status == 200, let list = try? JSONSerialization.jsonObject(with: body) as? [[String: Any]]
        else { return nil }
        var exits: [Int: ReplicaExit] = [:]
        var allEnded = true
        for container in list {
            guard let id = container["Id"] as? String,
                let labels = container["Labels"] as? [String: String],
                labels[Label.instance] == configuration.instanceID, labels[Label.run] == String(runId)
            else { continue }
            let state = await DockerExecution.state(of: id, client: client)
            let status = state?["Status"] as? String ?? ""
            if labels[Label.worker] == "true" {
                // A worker's end says nothing of the run's: it is stopped and removed.
                if status != "exited" && status != "stopped" {
                    _ = try? await client.request(.POST, "/containers/\(id)/kill", query: [("signal", "SIGKILL")])
                }
                await remove(id)
                continue
            }
            if let state, status == "exited" || status == "stopped",
                let replica = labels[Label.replica].flatMap(Int.init),
                let code = state["ExitCode"] as? Int
            {
                var exit = ReplicaExit(code: Int32(truncatingIfNeeded: code))
                if state["OOMKilled"] as? Bool == true { exit.detail = DockerExecution.oomKilled }
                exits[replica] = exit
            } else {
                allEnded = false
                _ = try? await client.request(.POST, "/containers/\(id)/kill", query: [("signal", "SIGKILL")])
            }
            await remove(id)
        }
        guard allEnded, !exits.isEmpty, exits.keys.sorted() == Array(0..<exits.count) else { return nil }
        return (0..<exits.count).map { exits[$0]! }  // keys checked above
    }
}

/// The containers of one run: one task per replica follows its log stream, waits for its exit, reads whether the
/// OOM killer ended it, and removes it.
final class DockerExecution: Execution {
    private let executor: DockerExecutor
    private let containers: [String]
    private let exits: [Task<ReplicaExit, Never>]
    private let exited: Exited
    let executedImage: ExecutedImage?
    let sharedNetwork: String?
    /// The host PID of the first container's process, once read (for ``accepts(replica:port:)``).
    private let firstPID = Mutex<Int?>(nil)
    private let warnedUnreadable = Atomic(false)

    /// The replicas whose container has exited.
    private final class Exited: Sendable {
        private let set = Mutex(Set<Int>())
        func insert(_ index: Int) { set.withLock { _ = $0.insert(index) } }
        func contains(_ index: Int) -> Bool { set.withLock { $0.contains(index) } }
    }

    init(
        executor: DockerExecutor,
        containers: [String],
        sharedNetwork: String? = nil,
        waits: [Task<Bool, Never>],
        launches: [ReplicaLaunch],
        memoryLimit: String?,
        image: ExecutedImage,
        log: RunLogWriter
    ) {
        self.executor = executor
        self.executedImage = image
        self.containers = containers
        self.sharedNetwork = sharedNetwork
        let exited = Exited()
        self.exited = exited
        exits = containers.enumerated().map { index, id in
            let prefix = launches[index].logPrefix
            let wait = waits[index]
            return Task {
                let result = await Self.follow(
                    id,
                    wait: wait,
                    executor: executor,
                    log: log,
                    prefix: prefix,
                    memoryLimit: memoryLimit
                )
                exited.insert(index)
                return result
            }
        }
    }

    var replicaCount: Int { containers.count }

    /// Workers on the host's network are reached on its loopback; others in the first worker's network namespace,
    /// which the server does not share: there, whether a port listens is read from the kernel's table of that
    /// namespace (`/proc/<pid>/net/tcp` and `tcp6` of the first container's process; the engine runs on this
    /// machine, as the bind-mounted pipes require).
    func accepts(replica: Int, port: Int) async -> Bool {
        guard sharedNetwork != nil else { return WorkerEndpoints.accepts(port: port) }
        var pid = firstPID.withLock { $0 }
        if pid == nil {
            pid = (await Self.state(of: containers[0], client: executor.client)?["Pid"] as? Int).flatMap {
                $0 > 0 ? $0 : nil
            }
            firstPID.withLock { $0 = pid }
        }
        guard let pid else { return false }
        let tables = ["tcp", "tcp6"].compactMap {
            try? String(contentsOfFile: "/proc/\(pid)/net/\($0)", encoding: .utf8)
        }
        guard !tables.isEmpty else {
            // Not readable from here (the server in another PID namespace than the engine's processes): the job
            // starts now instead of waiting out the run's deadline, and finds out itself.
            if !warnedUnreadable.exchange(true, ordering: .relaxed) {
                executor.logger.warning(
                    "cannot see whether the workers listen (/proc/\(pid)/net/tcp is not readable here); starting the job",
                    metadata: ["container": "\(containers[0])"]
                )
            }
            return true
        }
        return tables.contains { Self.listens(on: port, table: $0) }
    }

    /// Whether a `/proc/net/tcp`-style table has a socket listening (state `0A`) on local port `port`.
    static func listens(on port: Int, table: String) -> Bool {
        let wanted = String(format: ":%04X", port)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { continue }
            if fields[3] == "0A" && fields[1].hasSuffix(wanted) { return true }
        }
        return false
    }

    func waitForExit(replica: Int) async -> ReplicaExit { await exits[replica].value }

    func terminate(grace: Duration) async {
        let running = containers.indices.filter { !exited.contains($0) }
        guard !running.isEmpty else { return }
        let client = executor.client
        for i in running {
            _ = try? await client.request(.POST, "/containers/\(containers[i])/kill", query: [("signal", "SIGTERM")])
        }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, running.contains(where: { !exited.contains($0) }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for i in running where !exited.contains(i) {
            _ = try? await client.request(.POST, "/containers/\(containers[i])/kill", query: [("signal", "SIGKILL")])
        }
    }

    /// Logs the container's output until it ends, then returns how it ended and removes it.
    ///
    /// Engines do not always notice the OOM killer (Podman on cgroup v1 says `OOMKilled: false`): a SIGKILL of a
    /// container with a memory limit is reported as a likely one.
    private static func follow(
        _ id: String,
        wait: Task<Bool, Never>,
        executor: DockerExecutor,
        log: RunLogWriter,
        prefix: String,
        memoryLimit: String?
    ) async -> ReplicaExit {
        let client = executor.client
        let logs = Task { await streamLogs(id, client: client, demuxer: LogDemuxer(log: log, prefix: prefix)) }
        let state = await exitState(id, wait: wait, client: client, logger: executor.logger)
        // Once the container has exited its log file is complete: the following stream is ended here (Podman ends
        // it only a third of a second after the exit, and can miss the end altogether) and the rest is read without
        // following.
        logs.cancel()
        // The rest is read without following in every case: besides missing an exit, a following stream can end
        // before the last lines of a container that just exited (seen once with Podman 4.3). The engine serves the
        // same frames from the same log file, so the bytes already consumed are skipped.
        var (demuxer, skip) = await logs.value
        do {
            try await client.stream(
                .GET,
                "/containers/\(id)/logs",
                query: [("stdout", "true"), ("stderr", "true"), ("timestamps", "true")],
                timeout: .seconds(60),
                what: "reading the container's logs"
            ) { chunk in
                var chunk = chunk
                let dropped = min(skip, chunk.readableBytes)
                chunk.moveReaderIndex(forwardBy: dropped)
                skip -= dropped
                if chunk.readableBytes > 0 { demuxer.consume(chunk) }
            }
        } catch {
            log.append("tyger: the container's logs could not be read to their end: \(error)")
        }
        demuxer.finish()
        var exit = ReplicaExit(code: 255, detail: "the container engine did not say how the container ended")
        if let state {
            if let code = state["ExitCode"] as? Int { exit = ReplicaExit(code: Int32(truncatingIfNeeded: code)) }
            if state["OOMKilled"] as? Bool == true {
                exit.detail = Self.oomKilled
            } else if let error = state["Error"] as? String, !error.isEmpty {
                exit.detail = error
            }
        }
        if exit.detail == nil, exit.code == 128 + 9, let memoryLimit {
            exit.detail = "killed by SIGKILL with a memory limit of \(memoryLimit): most likely by the OOM killer"
        }
        await executor.remove(id)
        return exit
    }
}

/// Splits the engine's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, big-endian length) into
/// lines and appends each to the run log with the engine's timestamp. Lines the engine split (Docker cuts at
/// 16 KiB) are joined again.
struct LogDemuxer {
    let log: RunLogWriter
    let prefix: String
    private var buffered: [UInt8] = []
    /// Per stream (1 stdout, 2 stderr): the unfinished line and its stamp.
    private var partial: [UInt8: (bytes: [UInt8], stamp: (seconds: Int64, nanoseconds: Int)?)] = [:]

    init(log: RunLogWriter, prefix: String) {
        self.log = log
        self.prefix = prefix
    }

    mutating func consume(_ chunk: ByteBuffer) {
        buffered.append(contentsOf: chunk.readableBytesView)
        var offset = 0
        while buffered.count - offset >= 8 {
            let stream = buffered[offset]
            let length =
                Int(buffered[offset + 4]) << 24 | Int(buffered[offset + 5]) << 16 | Int(buffered[offset + 6]) << 8
                | Int(buffered[offset + 7])
            guard buffered.count - offset - 8 >= length else { break }
            frame(stream: stream, buffered[(offset + 8)..<(offset + 8 + length)])
            offset += 8 + length
        }
        if offset > 0 { buffered.removeFirst(offset) }
    }

    private mutating func frame(stream: UInt8, _ payload: ArraySlice<UInt8>) {
        var content = payload
        var stamp: (seconds: Int64, nanoseconds: Int)?
        if let space = payload.firstIndex(of: 0x20), space - payload.startIndex <= 40 {
            let text = String(decoding: payload[..<space], as: UTF8.self)
            if let parsed = RFC3339.parseComponents(text) {
                // Podman's stamps have whole seconds only: the time the line arrives is then the better one.
                stamp = text.contains(".") ? parsed : nil
                content = payload[(space + 1)...]
            }
        }
        var pending = partial[stream] ?? ([], nil)
        if pending.bytes.isEmpty { pending.stamp = stamp }
        var start = content.startIndex
        while let newline = content[start...].firstIndex(of: 0x0A) {
            pending.bytes.append(contentsOf: content[start..<newline])
            emit(pending.bytes, stamp: pending.stamp ?? stamp)
            pending = ([], stamp)
            start = newline + 1
        }
        pending.bytes.append(contentsOf: content[start...])
        partial[stream] = pending
    }

    private func emit(_ line: [UInt8], stamp: (seconds: Int64, nanoseconds: Int)?) {
        line.withUnsafeBytes { log.append(line: $0, prefix: prefix, stamp: stamp) }
    }

    /// Appends what is left of unfinished lines.
    mutating func finish() {
        for stream in partial.keys.sorted() {
            if let pending = partial[stream], !pending.bytes.isEmpty { emit(pending.bytes, stamp: pending.stamp) }
        }
        partial.removeAll()
    }
}

extension DockerExecution {
    /// Follows the container's log stream into `demuxer` until it ends or the task is canceled.
    ///
    /// - Returns: The demuxer and the bytes of the stream consumed.
    fileprivate static func streamLogs(
        _ id: String,
        client: DockerEngineClient,
        demuxer: LogDemuxer
    ) async -> (
        LogDemuxer, Int
    ) {
        var demuxer = demuxer
        var consumed = 0
        do {
            try await client.stream(
                .GET,
                "/containers/\(id)/logs",
                query: [("follow", "true"), ("stdout", "true"), ("stderr", "true"), ("timestamps", "true")],
                what: "following the container's logs"
            ) { chunk in
                consumed += chunk.readableBytes
                demuxer.consume(chunk)
            }
        } catch {
            // Canceled, or the engine ended the stream: the rest is read without following.
        }
        return (demuxer, consumed)
    }

    /// What a run's status reason says of a container the engine reports killed by the OOM killer.
    static let oomKilled = "killed by the OOM killer: the container ran out of memory"

    /// Whether a container `State` says it is no longer running.
    static func hasEnded(_ state: [String: Any]) -> Bool {
        ["exited", "dead", "stopped"].contains(state["Status"] as? String ?? "")
    }

    /// The container's `State` (`Status`, `ExitCode`, `OOMKilled`, `Error`), or `nil` when it cannot be inspected.
    static func state(of id: String, client: DockerEngineClient) async -> [String: Any]? {
        guard let (status, body) = try? await client.request(.GET, "/containers/\(id)/json"), status == 200,
            let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        else { return nil }
        return object["State"] as? [String: Any]
    }

    /// Waits until the container is no longer running and returns its `State` (exit code, OOM, error).
    ///
    /// The engine's wait (`wait`: true when it answered, false when it failed) is raced with an inspection every
    /// second: an engine can miss the exit of a container that ends as the wait begins (seen with Podman 4.3's
    /// answer to Docker's wait), and a wait must never hang a run.
    fileprivate static func exitState(
        _ id: String,
        wait: Task<Bool, Never>,
        client: DockerEngineClient,
        logger: Logger
    ) async -> [String: Any]? {
        func inspect() async -> [String: Any]? { await state(of: id, client: client) }
        // Neither side may hold the other up: an engine that misses the exit never ends its wait, and a task group
        // would wait for that child even after the polling one found the exit.
        let waited = Task {
            if await wait.value { return true }
            // The wait failed: the inspections decide.
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            return true
        }
        // Ends (false) when an inspection finds the container ended, or after 30 failed inspections in a row.
        let polled = Task {
            var misses = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                guard let state = await inspect() else {
                    misses += 1
                    if misses >= 30 { break }  // the engine lost the container: stop waiting
                    continue
                }
                misses = 0
                if hasEnded(state) { break }
            }
            return false
        }
        if await firstOf(waited, polled) == false {
            logger.debug("the engine's wait missed the container's exit", metadata: ["container": "\(id)"])
        }
        wait.cancel()
        waited.cancel()
        polled.cancel()
        return await inspect()
    }
}

/// The value of whichever task finishes first. The other is not waited for (cancel it): unlike a task group's
/// children, a task that ignores cancellation cannot hold the caller up.
func firstOf<T: Sendable>(_ a: Task<T, Never>, _ b: Task<T, Never>) async -> T {
    let once = Once()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        for task in [a, b] {
            Task {
                let value = await task.value
                if once.claim() { continuation.resume(returning: value) }
            }
        }
    }
}

/// True for the first caller of ``claim()`` only.
private final class Once: Sendable {
    private let taken = Mutex(false)
    func claim() -> Bool {
        taken.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
