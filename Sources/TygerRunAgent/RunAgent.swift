import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
public import TygerClient
import TygerContainers
import TygerCore
import TygerDataPath
import TygerIO
import TygerModel
public import TygerRunEngine
import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// Runs one replica of a run on a machine of a cluster (`tyger run-agent`, what a Slurm job starts): makes the
/// run's named pipes, starts the process, moves its buffers through their access URLs with the CLI's own reader and
/// writer (checksums, leases and retries included), ships its log lines to the server as they come and reports how
/// it ended.
///
/// The agent's own exit status is the process's (so the cluster's accounting agrees), or 1 when it could not start it.
public struct RunAgent: Sendable {
    public let launch: AgentLaunch
    public let transport: HTTPTransport
    /// The signed URLs, renewed while the run goes on.
    let urls: AgentURLs
    /// How long the process gets between SIGTERM and SIGKILL when the agent is told to stop.
    public var terminationGrace: Duration = .seconds(10)
    /// How often log lines are shipped.
    public var logInterval: Duration = .milliseconds(250)

    public init(launch: AgentLaunch, transport: HTTPTransport) {
        self.launch = launch
        self.transport = transport
        self.urls = AgentURLs(launch: launch, transport: transport)
    }

    /// An agent for the launch document a job's script carries (``AgentLaunch/encoded()``).
    ///
    /// - Throws: ``RunAgentError`` when the document is not one this agent reads.
    public init(launchDocument: String, transport: HTTPTransport) throws {
        self.init(launch: try Self.launch(from: launchDocument), transport: transport)
    }

    /// Runs the replica a launch document describes (what `tyger run-agent` does), over HTTP connections that also
    /// trust the server's own CA when the document carries one.
    ///
    /// - Returns: The exit status for the agent's process.
    /// - Throws: ``RunAgentError`` when the document is not one this agent reads, or its CA cannot be used.
    public static func run(launchDocument: String, stop: AgentStop) async throws -> Int32 {
        let launch = try launch(from: launchDocument)
        var caPath: String?
        if let pem = launch.caCertificate {
            let directory: String
            do { directory = try makePrivateTemporaryDirectory() } catch {
                throw RunAgentError(message: "cannot make a directory for the server's CA certificates: \(error)")
            }
            caPath = directory + "/ca.pem"
            guard FileManager.default.createFile(atPath: directory + "/ca.pem", contents: Data(pem.utf8)) else {
                try? FileManager.default.removeItem(atPath: directory)
                throw RunAgentError(message: "cannot write the server's CA certificates to \(directory)")
            }
        }
        defer {
            if let caPath {
                try? FileManager.default.removeItem(atPath: (caPath as NSString).deletingLastPathComponent)
            }
        }
        do {
            return try await HTTPTransport.withTransport(caCertificatePath: caPath) { transport in
                await RunAgent(launch: launch, transport: transport).run(stop: stop)
            }
        } catch let error as RunAgentError {
            throw error
        } catch {
            throw RunAgentError(
                message: caPath == nil
                    ? "cannot make the agent's HTTP client: \(error)"
                    : "the server's CA certificates cannot be used: \(error)"
            )
        }
    }

    /// The launch document a job's script carries (``AgentLaunch/encoded()``).
    ///
    /// - Throws: ``RunAgentError`` when the document is not one this agent reads.
    public static func launch(from document: String) throws -> AgentLaunch {
        do {
            return try AgentLaunch.decode(document)
        } catch let error as TygerRunEngineError {
            throw RunAgentError(message: error.message)
        }
    }

    /// Runs the replica to its end and reports it.
    ///
    /// - Parameter stop: Fired (SIGTERM, SIGINT) to stop the process: SIGTERM, then SIGKILL after the grace.
    /// - Returns: The exit status for the agent's own process.
    public func run(stop: AgentStop) async -> Int32 {
        let scratch: String
        do {
            scratch = try Self.makePrivateTemporaryDirectory()
        } catch {
            await reportExit(ReplicaExit(code: 1, detail: "the agent cannot make a temporary directory: \(error)"))
            return 1
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let logPath = scratch + "/log"
        let log: RunLogWriter
        do {
            log = try RunLogWriter(path: logPath)
        } catch {
            await reportExit(ReplicaExit(code: 1, detail: "the agent cannot open its log: \(error)"))
            return 1
        }
        let renewing = Task { [urls] in await urls.keepFresh() }
        let shipper = LogShipper(path: logPath, agent: self)
        let shipping = Task { await shipper.run(every: logInterval) }
        let exit = await runProcess(scratch: scratch, log: log, stop: stop)
        shipping.cancel()
        _ = await shipping.value
        await shipper.shipRemaining()
        await reportExit(exit)
        renewing.cancel()
        return exit.code
    }

    /// Makes the pipes, starts the process, moves the buffers; how it ended (with a transfer's failure as detail).
    private func runProcess(scratch: String, log: RunLogWriter, stop: AgentStop) async -> ReplicaExit {
        var openers: [(BufferLaunch, FifoOpener)] = []
        do {
            try Self.makeRunDirectory(launch.runDirectory)
        } catch {
            let message = "cannot make the run's directory: \(error)"
            log.append(message)
            return ReplicaExit(code: 1, detail: message)
        }
        // The pipes and the default working directory are in it: they go with it.
        defer { try? FileManager.default.removeItem(atPath: launch.runDirectory) }
        do {
            try Self.makeDirectory(launch.workingDirectory)
            if !launch.buffers.isEmpty || (launch.container != nil && !launch.pipesDirectory.isEmpty) {
                try Self.makeDirectory(launch.pipesDirectory)
                for buffer in launch.buffers {
                    let path = hostPath(ofPipe: buffer.pipe)
                    try NamedPipe.create(at: path, mode: 0o600)
                    openers.append((buffer, FifoOpener(path: path, forWriting: buffer.isInput)))
                }
            }
        } catch {
            let message = "cannot make the run's directories and pipes: \(error)"
            log.append(message)
            return ReplicaExit(code: 1, detail: message)
        }
        // A worker's ports were taken on the server's machine: one in use here would have it fail to listen, or
        // have the job reach another program. Said at once instead.
        let taken = Self.portsInUse(launch.portVariables ?? [], environment: launch.environment)
        if !taken.isEmpty {
            for (_, opener) in openers { opener.release() }
            let message =
                "the worker's port"
                + (taken.count > 1 ? "s " : " ")
                + taken.map { "\($0.port) (\($0.variable))" }.joined(separator: ", ")
                + (taken.count > 1 ? " are" : " is") + " in use on \(ProcessInfo.processInfo.hostName)"
            log.append(message)
            return ReplicaExit(code: 1, detail: message)
        }
        var request = ExecutionRequest(
            runId: launch.runId,
            runDirectory: scratch,
            pipesDirectory: launch.pipesDirectory,
            image: launch.container?.image ?? "",
            replicas: [
                ReplicaLaunch(
                    arguments: launch.arguments,
                    commandCount: launch.commandCount ?? launch.arguments.count,
                    environment: launch.environment,
                    workingDirectory: launch.container.map(\.workingDirectory) ?? launch.workingDirectory,
                    logPrefix: launch.logPrefix
                )
            ]
        )
        request.isWorkers = launch.worker == true
        request.firstReplica = launch.replica
        let execution: any Execution
        do {
            execution = try await executor().start(request, log: log)
        } catch {
            for (_, opener) in openers { opener.release() }
            let message = (error as? TygerRunEngineError)?.message ?? "\(error)"
            log.append("cannot start the process: \(message)")
            return ReplicaExit(code: 127, detail: message)
        }
        stop.onFire { [terminationGrace] in await execution.terminate(grace: terminationGrace) }
        var tasks: [(isInput: Bool, task: Task<String?, Never>)] = []
        for (buffer, opener) in openers {
            tasks.append((buffer.isInput, Task { await transfer(buffer, opener: opener, stop: stop) }))
        }
        let exit = await execution.waitForExit(replica: 0)
        // The process is gone: a pipe it never opened must not keep its transfer waiting (an output never opened
        // completes empty, as with the engine), and inputs it stopped reading are abandoned.
        for (_, opener) in openers { opener.release() }
        for (isInput, task) in tasks where isInput { task.cancel() }
        var failed: [String] = []
        for (_, task) in tasks { if let failure = await task.value { failed.append(failure) } }
        if failed.isEmpty { return exit }
        for failure in failed { log.append(failure) }
        // A process that succeeded still fails the run when its buffers did not make it.
        return ReplicaExit(code: exit.code == 0 ? 1 : exit.code, detail: failed.joined(separator: "; "))
    }

    /// Where the agent makes a buffer's pipe: where the process sees it, or, for a container (which sees it in its
    /// own pipes directory), the same name in the launch's pipes directory, which is mounted there.
    func hostPath(ofPipe pipe: String) -> String {
        guard launch.container != nil else { return pipe }
        return launch.pipesDirectory + "/" + (pipe as NSString).lastPathComponent
    }

    /// What runs the process: the machine's container engine when the launch says so, else a host process.
    private func executor() async throws -> any Executor {
        guard let container = launch.container else { return LocalProcessExecutor() }
        var configuration = DockerExecutorConfiguration(host: container.host, instanceID: container.instanceID)
        guard let pull = ImagePullPolicy(rawValue: container.pull) else {
            throw TygerRunEngineError(.executorFailure, "unknown image pull policy '\(container.pull)'")
        }
        configuration.pull = pull
        configuration.network = container.network
        do {
            return try await DockerExecutor(configuration: configuration, logger: Logger(label: "tyger.run-agent"))
        } catch let error as DockerEngineError {
            throw TygerRunEngineError(.executorFailure, "the container engine at \(container.host): \(error.message)")
        }
    }

    /// Streams one buffer between its pipe and its access URL.
    ///
    /// - Returns: Why it failed, when it did in a way that fails the run.
    private func transfer(_ buffer: BufferLaunch, opener: FifoOpener, stop: AgentStop) async -> String? {
        let url: ServiceURL
        do {
            url = try ServiceURL(urls.buffer(buffer.name) ?? buffer.url)
        } catch { return "the access URL of '\(buffer.name)' is not valid" }
        // Paced as the CLI's transfers are: the window follows the throughput, timeouts the measured rate. A URL
        // refused as expired is renewed.
        let name = buffer.name
        let store = PacedBlobStore(
            HTTPBlobStore(containerURL: url, transport: transport) { [urls] in try await urls.refreshed(name) },
            pacer: TransferPacer(maxInFlight: buffer.isInput ? ReadOptions().dop : WriteOptions().dop)
        )
        let descriptor: OwnedDescriptor
        do {
            descriptor = try await opener.openReleasingOnCancel()
        } catch {
            return "cannot open the pipe of '\(buffer.name)': \(error)"
        }
        // Once the agent is told to stop (a cancel, a timeout), what the process wrote is not all it would have
        // written: an output must not end as complete.
        let source = StoppableSource(FIFOSource(descriptor), stop: stop)
        if buffer.isRelayed {
            // Under the report URL as it is now: the process may open its pipe after the first URLs expired.
            let current =
                (try? ServiceURL(AgentLaunch.pipeURL(reportURL: urls.reportURL, parameter: buffer.name))) ?? url
            return await relay(buffer, url: current, descriptor: descriptor, source: source, opener: opener, stop: stop)
        }
        if buffer.isInput {
            if opener.wasReleased || Task.isCancelled { return nil }
            guard let error = await PipeTransfer.feed(descriptor, from: store) else { return nil }
            return "the input buffer '\(buffer.name)' failed: \(Self.describe(error))"
        }
        var options = WriteOptions()
        options.createContainer = false
        guard let error = await PipeTransfer.drain(source, into: store, options: options) else { return nil }
        await BufferEnd.markFailedIfUnfinished(store)
        if stop.isFired { return nil }
        return "the output buffer '\(buffer.name)' failed: \(Self.describe(error))"
    }

    /// Streams an ephemeral buffer between its pipe and its relay on the server (nothing is stored).
    private func relay(
        _ buffer: BufferLaunch,
        url: ServiceURL,
        descriptor: OwnedDescriptor,
        source: StoppableSource,
        opener: FifoOpener,
        stop: AgentStop
    ) async -> String? {
        let client = RelayClient(url: url, transport: transport)
        do {
            if buffer.isInput {
                if opener.wasReleased || Task.isCancelled { return nil }
                _ = try await client.read(to: FIFOSink(descriptor))
            } else {
                _ = try await client.write(from: source)
            }
            return nil
        } catch {
            if buffer.isInput, Task.isCancelled { return nil }
            if stop.isFired { return nil }
            if let io = error as? TygerIOError, io.code == .brokenPipe { return nil }
            return "the \(buffer.isInput ? "input" : "output") '\(buffer.name)' relay failed: \(Self.describe(error))"
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let e = error as? TygerClientError { return e.message }
        if let e = error as? TygerRunEngineError { return e.message }
        return "\(error)"
    }

    // MARK: Reports

    /// The URL of one report (`logs` or `exit`) of this replica.
    func reportURL(_ kind: String) throws -> ServiceURL {
        let replica = (launch.worker == true ? "worker=" : "replica=") + String(launch.replica)
        return try ServiceURL(AgentLaunch.url(under: urls.reportURL, kind, query: replica))
    }

    /// How a report went.
    enum Delivery { case taken, refused, unreachable }

    /// Posts a report; `true` when the server took it.
    func post(_ kind: String, body: [UInt8], contentType: String) async -> Bool {
        await deliver(kind, body: body, contentType: contentType) == .taken
    }

    /// Posts a report. Retries for about half a minute on transport failures and 5xx answers (`unreachable` after);
    /// a 4xx answer is `refused` at once (the run is gone, or the report is not acceptable).
    func deliver(_ kind: String, body: [UInt8], contentType: String) async -> Delivery {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        var delay = Duration.milliseconds(250)
        var renewed = false
        for attempt in 0..<8 {
            if attempt > 0 {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(8))
            }
            guard let url = try? reportURL(kind) else { return .refused }
            guard
                let response = try? await transport.send(
                    .POST,
                    url,
                    headers: headers,
                    body: ByteBuffer(bytes: body),
                    maxBody: 64 << 10,
                    timeout: .seconds(30)
                )
            else { continue }
            if (200..<300).contains(response.status) { return .taken }
            // An expired URL (the renewal came too late): renewed once, then sent again.
            if response.status == 403, !renewed, urls.expiresAt != nil {
                renewed = true
                if await urls.renew() { continue }
            }
            if response.status < 500 {
                FileHandle.standardError.write(
                    Data(
                        "tyger run-agent: the server refused the \(kind) report: \(response.status) \(response.text)\n"
                            .utf8
                    )
                )
                return .refused
            }
        }
        return .unreachable
    }

    private func reportExit(_ exit: ReplicaExit) async {
        var fields: [String: Any] = ["code": Int(exit.code)]
        if let detail = exit.detail { fields["detail"] = detail }
        let body = (try? JSONSerialization.data(withJSONObject: fields)) ?? Data("{\"code\":\(exit.code)}".utf8)
        if !(await post("exit", body: Array(body), contentType: "application/json")) {
            FileHandle.standardError.write(Data("tyger run-agent: the exit report did not reach the server\n".utf8))
        }
    }

    // MARK: Files

    /// A new private directory under `$TMPDIR` (or `/tmp`).
    static func makePrivateTemporaryDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/tyger-agent-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let start = buffer.baseAddress, mkdtemp(start) != nil else { return nil }
            return String(cString: start)
        }
        guard let made else { throw TygerIOError.system("mkdtemp", path: base) }
        return made
    }

    /// Makes the replica's own directory (0700, its parent must exist); one that exists is refused (another agent's,
    /// or anyone's).
    static func makeRunDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else {
            throw TygerRunEngineError(
                .executorFailure,
                "\(path): \(String(cString: strerror(errno)))"
                    + (errno == EEXIST ? " (left by an earlier attempt? remove it to run again)" : "")
            )
        }
    }

    /// The ports among `variables` of `environment` that something on this machine already listens on (TCP, any
    /// address): a bind to them, with `SO_REUSEADDR` as servers bind, fails with `EADDRINUSE`.
    static func portsInUse(_ variables: [String], environment: [String: String]) -> [(variable: String, port: Int)] {
        variables.compactMap { variable -> (String, Int)? in
            guard let text = environment[variable], let port = Int(text), (1...65535).contains(port) else { return nil }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            // As a server binds (connections of the port's past in TIME_WAIT do not count); a listener still does.
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = INADDR_ANY
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            return bound != 0 && errno == EADDRINUSE ? (variable, port) : nil
        }
    }

    /// Makes a directory and its missing parents (0700); an existing one must be a directory, not a link.
    static func makeDirectory(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw TygerRunEngineError(.executorFailure, "\(path) exists and is not a directory")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectory(parent) }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw TygerRunEngineError(.executorFailure, "cannot make \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Why the agent cannot run, in words.
public struct RunAgentError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Tells the agent to stop its process (a signal from the cluster); later handlers run at once.
public final class AgentStop: Sendable {
    private struct State {
        var fired = false
        var handlers: [@Sendable () async -> Void] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Whether the agent was told to stop.
    public var isFired: Bool { state.withLock { $0.fired } }

    /// Runs every registered handler (once).
    public func fire() {
        let handlers = state.withLock { s -> [@Sendable () async -> Void] in
            if s.fired { return [] }
            s.fired = true
            defer { s.handlers = [] }
            return s.handlers
        }
        for handler in handlers { Task { await handler() } }
    }

    func onFire(_ handler: @escaping @Sendable () async -> Void) {
        let now = state.withLock { s -> Bool in
            if s.fired { return true }
            s.handlers.append(handler)
            return false
        }
        if now { Task { await handler() } }
    }
}

/// A pipe's read end that fails, instead of ending, once the agent was told to stop: the output it feeds then ends
/// failed, never complete.
final class StoppableSource: ByteSource {
    private let inner: FIFOSource
    private let stop: AgentStop

    init(_ inner: FIFOSource, stop: AgentStop) {
        self.inner = inner
        self.stop = stop
    }

    var supportsTimeouts: Bool { inner.supportsTimeouts }

    func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        if stop.isFired { throw TygerRunEngineError(.executorFailure, "the job was told to stop") }
        let outcome = try inner.read(into: buffer, waitAtMost: waitAtMost)
        if case .endOfStream = outcome, stop.isFired {
            throw TygerRunEngineError(.executorFailure, "the job was told to stop")
        }
        return outcome
    }
}

/// Ships the agent's log file to the server: complete lines only, at most 1 MiB per report.
private final class LogShipper: Sendable {
    let path: String
    let agent: RunAgent
    private struct State {
        var offset: Int64 = 0
        var refused = false
    }
    private let state = Mutex(State())

    init(path: String, agent: RunAgent) {
        self.path = path
        self.agent = agent
    }

    func run(every interval: Duration) async {
        // The first report, with no lines, tells the server the job runs (the run leaves `Pending`).
        if case .refused = await agent.deliver("logs", body: [], contentType: "text/plain; charset=utf-8") {
            state.withLock { $0.refused = true }
        }
        while !Task.isCancelled {
            await shipRemaining()
            try? await Task.sleep(for: interval)
        }
    }

    /// Ships every complete line written so far.
    func shipRemaining() async {
        while true {
            let (offset, refused) = state.withLock { ($0.offset, $0.refused) }
            if refused { return }
            guard let chunk = read(from: offset), !chunk.isEmpty else { return }
            switch await agent.deliver("logs", body: chunk, contentType: "text/plain; charset=utf-8") {
            case .taken: state.withLock { $0.offset += Int64(chunk.count) }
            case .refused:
                state.withLock { $0.refused = true }
                return
            case .unreachable: return  // the same lines again at the next look
            }
        }
    }

    /// The complete lines from `offset` on (up to 1 MiB, or one longer line whole).
    private func read(from offset: Int64) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var at = offset
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(at)) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            at += Int64(n)
            if let last = bytes.lastIndex(of: 0x0A), bytes.count >= 1 << 20 {
                return Array(bytes[...last])
            }
        }
        guard let last = bytes.lastIndex(of: 0x0A) else { return [] }
        return Array(bytes[...last])
    }
}
