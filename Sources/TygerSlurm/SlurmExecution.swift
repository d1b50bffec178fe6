import Foundation
import Synchronization
import TygerIO
import TygerModel
import TygerRunEngine

/// The Slurm jobs of one run (one per replica): exits come from the agents' reports, or from `squeue`/`scontrol` for
/// a job that ended without one.
final class SlurmExecution: Execution, Sendable {
    let runId: Int64
    let replicaCount: Int
    private let log: RunLogWriter
    private let commands: SlurmCommands
    private let configuration: SlurmExecutorConfiguration

    private struct Replica {
        var job: String?
        var exit: ReplicaExit?
        /// When the job was first seen gone or ended with no report yet.
        var goneSince: ContinuousClock.Instant?
        /// Why Slurm keeps the job queued, as last told.
        var queuedReason: String?
        /// The address of the machine the job runs on (its node's `NodeAddr`), once it runs.
        var host: String?
        /// The agent's report of a process ended by a signal, while Slurm is asked why (``agentReported(_:replica:)``).
        var signalled: ReplicaExit?
        var waiters: [CheckedContinuation<ReplicaExit, Never>] = []
    }
    private let replicas: Mutex<[Replica]>
    /// Why the jobs wait, as it changes; finished when the first job runs (its agent reported, or `squeue` lists it
    /// running or ended after running): the run is `Pending` until then.
    private let queue = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))

    init(
        runId: Int64,
        replicas: Int,
        log: RunLogWriter,
        commands: SlurmCommands,
        configuration: SlurmExecutorConfiguration
    ) {
        self.runId = runId
        self.replicaCount = replicas
        self.log = log
        self.commands = commands
        self.configuration = configuration
        self.replicas = Mutex(Array(repeating: Replica(), count: replicas))
    }

    func setJob(_ job: String, replica: Int) { replicas.withLock { $0[replica].job = job } }

    var startsQueued: Bool { true }

    func queueReasons() -> AsyncStream<String> { queue.stream }

    /// A job runs: its agent reported, or Slurm lists it running (or ended).
    func jobStarted() { queue.continuation.finish() }

    private var jobs: [(replica: Int, job: String)] {
        replicas.withLock { r in r.indices.compactMap { i in r[i].exit == nil ? r[i].job.map { (i, $0) } : nil } }
    }

    /// Set once the server stops the jobs itself (a cancel, a timeout): their signals need no explanation.
    private let stopping = Mutex(false)

    /// An agent's report. A process ended by a signal the server did not send was stopped by Slurm: the node failed,
    /// the job was preempted, cancelled by someone else, or ran out of its time or memory. Slurm's state and reason
    /// then go with the exit (`the Slurm job 9 ended NODE_FAIL (NodeDown)`), looked up for up to about 3 s while the
    /// job still shows as running.
    func agentReported(_ exit: ReplicaExit, replica: Int) {
        let job = replicas.withLock { r -> String? in
            guard r[replica].exit == nil, r[replica].signalled == nil else { return nil }
            guard exit.code > 128, !stopping.withLock({ $0 }), let job = r[replica].job else { return nil }
            r[replica].signalled = exit
            return job
        }
        guard let job else {
            reported(exit, replica: replica)
            return
        }
        Task {
            var explained = exit
            for attempt in 0..<6 {
                if attempt > 0 { await sleep(.milliseconds(500)) }
                guard let fields = await shownJob(job), let state = fields["JobState"],
                    !Self.runningStates.contains(state)
                else { continue }
                if Self.stoppedByClusterStates.contains(state) {
                    let detail = Self.ended(job: job, state: state, reason: fields["Reason"] ?? "")
                    log.append(detail)
                    explained.detail = [detail, exit.detail].compactMap { $0 }.joined(separator: "; ")
                }
                break
            }
            reported(explained, replica: replica)
        }
    }

    func waitForExit(replica: Int) async -> ReplicaExit {
        await withCheckedContinuation { continuation in
            let exit = replicas.withLock { r -> ReplicaExit? in
                if let exit = r[replica].exit { return exit }
                r[replica].waiters.append(continuation)
                return nil
            }
            if let exit { continuation.resume(returning: exit) }
        }
    }

    /// An agent's report (the first one of a replica counts).
    func reported(_ exit: ReplicaExit, replica: Int) {
        let waiters = replicas.withLock { r -> [CheckedContinuation<ReplicaExit, Never>] in
            guard r[replica].exit == nil else { return [] }
            r[replica].exit = exit
            defer { r[replica].waiters = [] }
            return r[replica].waiters
        }
        for waiter in waiters { waiter.resume(returning: exit) }
    }

    /// Appends an agent's log lines (`<stamp> <text>\n` each) with their stamps.
    func appendLogs(_ bytes: [UInt8]) {
        var start = 0
        bytes.withUnsafeBytes { raw in
            while start < raw.count {
                let end = raw[start...].firstIndex(of: 0x0A) ?? raw.count
                let line = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if let space = line.firstIndex(of: 0x20),
                    let stamp = RFC3339.parseComponents(String(decoding: line[..<space], as: UTF8.self))
                {
                    log.append(line: UnsafeRawBufferPointer(rebasing: line[(space + 1)...]), stamp: stamp)
                } else if !line.isEmpty {
                    log.append(line: line)
                }
                start = end + 1
            }
        }
    }

    /// Watches the jobs until every replica has an exit; `done` runs at the end.
    func startWatching(done: @escaping @Sendable () -> Void) {
        Task {
            while !jobs.isEmpty {
                await look()
                // Not cancellable: the loop ends when every replica has an exit.
                await sleep(configuration.pollInterval)
            }
            // Late log lines may still be on their way for a moment after the last exit; the receiver is kept.
            await sleep(.seconds(5))
            done()
        }
    }

    private func sleep(_ duration: Duration) async {
        try? await Task.sleep(for: duration)
    }

    /// One look at the jobs still without an exit.
    private func look() async {
        let pending = jobs
        guard !pending.isEmpty else { return }
        let ids = pending.map(\.job)
        guard
            let result = try? await commands.run(
                "squeue",
                ["-h", "-t", "all", "-o", "%i|%T|%r|%N", "-j", ids.joined(separator: ",")]
            )
        else { return }
        var states: [String: (state: String, reason: String)] = [:]
        var nodes: [String: String] = [:]
        if result.code == 0 {
            for line in result.output.split(separator: "\n") {
                let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                if parts.count >= 3 { states[parts[0]] = (parts[1], parts[2]) }
                if parts.count >= 4, parts[1] == "RUNNING", !parts[3].isEmpty { nodes[parts[0]] = parts[3] }
            }
        } else if !result.error.contains("Invalid job id") {
            return  // the controller did not answer: look again later
        }
        let now = ContinuousClock.now
        for (replica, job) in pending {
            // The agent reported; its exit waits only for Slurm's reason (``agentReported(_:replica:)``).
            if replicas.withLock({ $0[replica].signalled != nil }) { continue }
            if let node = nodes[job], replicas.withLock({ $0[replica].host == nil }) {
                let host = await address(ofNode: node)
                replicas.withLock { $0[replica].host = host }
            }
            if let listed = states[job], listed.state == "PENDING", Self.hopelessReasons.contains(listed.reason) {
                // Slurm keeps such a job queued for ever: it is cancelled, and the run fails with the reason.
                _ = try? await commands.run("scancel", [job])
                let detail = "the Slurm job \(job) cannot start (\(listed.reason))"
                log.append(detail)
                reported(ReplicaExit(code: 1, detail: detail), replica: replica)
                continue
            }
            let state = states[job]?.state
            if let state, Self.ranStates.contains(state) { jobStarted() }
            if let listed = states[job], listed.state == "PENDING", !["None", ""].contains(listed.reason),
                replicas.withLock({ r in
                    defer { r[replica].queuedReason = listed.reason }
                    return r[replica].queuedReason != listed.reason
                })
            {
                queue.continuation.yield("Slurm job \(job) is queued (\(listed.reason))")
            }
            let live = state.map(Self.liveStates.contains) ?? false
            let since = replicas.withLock { r -> ContinuousClock.Instant? in
                if live {
                    r[replica].goneSince = nil
                    return nil
                }
                if r[replica].goneSince == nil { r[replica].goneSince = now }
                return r[replica].goneSince
            }
            guard let since, now - since >= configuration.reportGrace else { continue }
            reported(await unreportedExit(job: job, listed: states[job]), replica: replica)
        }
    }

    /// The address of a node (`NodeAddr`, which is its name unless the cluster says otherwise).
    private func address(ofNode node: String) async -> String {
        guard let shown = try? await commands.run("scontrol", ["show", "node", "-o", node]), shown.code == 0,
            let address = Self.fields(shown.output)["NodeAddr"], !address.isEmpty
        else { return node }
        return address
    }

    var placesWorkers: Bool { true }

    /// For workers: each replica's machine, once every one runs.
    func workerHosts() async -> [String]? {
        let hosts = replicas.withLock { r in r.compactMap(\.host) }
        return hosts.count == replicaCount ? hosts : nil
    }

    /// For workers: a TCP connection to the replica's machine, once Slurm says where it runs.
    func accepts(replica: Int, port: Int) async -> Bool {
        guard let host = replicas.withLock({ $0[replica].host }) else { return false }
        return (try? await DedicatedThread.run(name: "tyger-slurm-probe") { TCPProbe.accepts(host: host, port: port) })
            ?? false
    }

    /// How a job that ended without its agent's report ended, from `scontrol show job`.
    private func unreportedExit(job: String, listed: (state: String, reason: String)?) async -> ReplicaExit {
        var state = listed?.state ?? "gone"
        var reason = listed?.reason ?? ""
        var code: Int32 = 1
        if let fields = await shownJob(job) {
            state = fields["JobState"] ?? state
            reason = fields["Reason"] ?? reason
            if let exit = fields["ExitCode"] {
                let parts = exit.split(separator: ":").compactMap { Int32($0) }
                if parts.count == 2 { code = parts[1] > 0 ? 128 + parts[1] : parts[0] }
            }
        }
        if code == 0 { code = 1 }
        let detail = Self.ended(job: job, state: state, reason: reason) + " without its agent's report"
        log.append("\(detail); is \(configuration.agentPath) installed where the job ran, and can it reach the server?")
        return ReplicaExit(code: code, detail: detail)
    }

    /// The fields of `scontrol show job -o JOB`; `nil` when it failed.
    private func shownJob(_ job: String) async -> [String: String]? {
        guard let shown = try? await commands.run("scontrol", ["show", "job", "-o", job]), shown.code == 0 else {
            return nil
        }
        return Self.fields(shown.output)
    }

    /// `the Slurm job 9 ended NODE_FAIL (NodeDown)`; no reason when Slurm gives none.
    static func ended(job: String, state: String, reason: String) -> String {
        "the Slurm job \(job) ended \(state)" + (["None", ""].contains(reason) ? "" : " (\(reason))")
    }

    /// `key=value` fields of a one-line `scontrol show` answer.
    static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }

    /// Pending reasons that no wait will change (the job asks for more than the partition, account or QOS allow).
    static let hopelessReasons: Set<String> = [
        "PartitionTimeLimit", "PartitionNodeLimit", "PartitionConfig", "InvalidAccount", "InvalidQOS",
        "BadConstraints", "AccountNotAllowed", "QOSNotAllowed", "DependencyNeverSatisfied",
        "AssocMaxWallDurationPerJobLimit",
        "QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "QOSMaxCpuPerJobLimit", "AssocMaxNodePerJobLimit",
        "QOSMaxNodePerJobLimit", "AssocMaxMemPerJobLimit", "QOSMaxMemoryPerJob",
    ]

    /// Job states in which the job may still report.
    /// States of a job that left the queue (`CONFIGURING` is its nodes booting: still waiting).
    static let ranStates: Set<String> = [
        "RUNNING", "COMPLETING", "COMPLETED", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "FAILED", "TIMEOUT",
        "OUT_OF_MEMORY", "NODE_FAIL",
    ]

    /// States of a job that still runs (or is ending): its final state is not known yet.
    static let runningStates: Set<String> = ["RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "CONFIGURING"]

    /// Final states in which Slurm, not the process or the server, ended the job.
    static let stoppedByClusterStates: Set<String> = [
        "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "TIMEOUT", "CANCELLED",
    ]

    static let liveStates: Set<String> = [
        "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
        "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD",
    ]

    /// Cancels queued jobs, sends SIGTERM to running ones (their agents stop their processes and report), and
    /// cancels whatever is left after `grace`.
    func terminate(grace: Duration) async {
        stopping.withLock { $0 = true }
        let pending = jobs.map(\.job)
        guard !pending.isEmpty else { return }
        _ = try? await commands.run("scancel", ["--state=PENDING"] + pending)
        _ = try? await commands.run("scancel", ["--full", "--signal=TERM"] + pending)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, !jobs.isEmpty {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let left = jobs.map(\.job)
        guard !left.isEmpty else { return }
        _ = try? await commands.run("scancel", left)
        // Jobs cancelled now end within seconds; one that Slurm cannot end (a controller gone, a node that does not
        // answer) must not keep the run, or the server's shutdown, waiting for ever.
        let bound = ContinuousClock.now + configuration.reportGrace + configuration.pollInterval * 10
        while ContinuousClock.now < bound, !jobs.isEmpty {
            try? await Task.sleep(for: .milliseconds(100))
        }
        for (replica, job) in jobs {
            let detail = "the Slurm job \(job) did not end after scancel"
            log.append(detail)
            reported(ReplicaExit(code: 137, detail: detail), replica: replica)
        }
    }
}
