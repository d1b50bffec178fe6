import Foundation
import Synchronization
import TygerCore
import TygerDataPath
import TygerIO
import TygerModel
import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

extension RunSupervisor {
    /// Runs the run to its end: FIFOs, processes, transfers, deadline and cancel; then cleans up the run directory
    /// (the log stays).
    func supervise() async {
        let go = state.withLock { s -> Bool in
            if s.lifecycle.isFinished { return false }
            s.supervising = true
            return true
        }
        defer { engine.removeSupervisor(runId) }
        guard go else { return }
        if engine.clock.now() >= deadline {
            await handle { $0.timedOut() }
            return
        }
        let directory = engine.runDirectory(runId)
        let parameters = self.parameters
        await supervise(directory: directory, parameters: parameters)
        // No FIFO open may be left pending on a FIFO about to disappear (ephemeral relays included).
        releasePipes()
        for opener in state.withLock({ Array($0.openers.values) + Array($0.processSideOpeners.values) }) {
            await opener.waitUntilSettled()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func supervise(directory: String, parameters: [Parameter]) async {
        let execution: any Execution
        var workers: (any Execution)?
        do {
            let workerSpec = currentRun.worker.flatMap { target -> (Codespec, Int)? in
                guard case .inline(let spec) = target.codespec else { return nil }
                return (spec, max(1, target.replicas ?? 1))
            }
            let endpoints = try workerSpec.map {
                try WorkerEndpoints.allocate(endpoints: $0.0.endpoints ?? [:], replicas: $0.1)
            }
            var (request, log, launches) = try await prepare(directory: directory, parameters: parameters)
            if let (spec, replicas) = workerSpec, let endpoints {
                var workerRequest = workerRequest(spec, replicas: replicas, endpoints: endpoints, directory: directory)
                workerRequest.reportURL = request.reportURL
                workerRequest.urlsExpireAt = request.urlsExpireAt
                workerRequest.deadline = request.deadline
                workerRequest.nodePool = currentRun.worker?.nodePool
                let started = try await engine.executor.start(workerRequest, log: log)
                workers = started
                if let stopped = await waitUntilReady(started, replicas: replicas, endpoints: endpoints) {
                    await started.terminate(grace: .zero)
                    await handle(stopped)
                    return
                }
                request.network = started.sharedNetwork
                // Where the workers are: on this machine's loopback, or the cluster's machines that run them.
                request.replicas = launches(endpoints.jobEnvironment(hosts: await started.workerHosts()))
            }
            execution = try await engine.executor.start(request, log: log)
        } catch {
            await workers?.terminate(grace: .zero)
            let message = (error as? TygerRunEngineError)?.message ?? "\(error)"
            await handle { $0.startFailed(message) }
            return
        }
        state.withLock {
            $0.execution = execution
            $0.run.executedImage = execution.executedImage
        }
        // An executor that moves its own buffers has its processes transfer them (and report how that went).
        let transfers = engine.executor.movesOwnBuffers ? [] : parameters.filter { !$0.isEphemeral }
        let replicas = execution.replicaCount
        let queued = execution.startsQueued
        await handle { $0.started(replicas: replicas, transfers: transfers.count, queued: queued) }
        if state.withLock({ $0.lifecycle.isFinished }) {
            await execution.terminate(grace: .zero)
        }
        await withDiscardingTaskGroup { group in
            if queued {
                group.addTask {
                    let began = await untilTriggered(self.finished) {
                        for await reason in execution.queueReasons() { await self.noteQueued(reason) }
                        return !Task.isCancelled
                    }
                    if began == true { await self.handle { $0.began() } }
                }
            }
            for replica in 0..<replicas {
                group.addTask {
                    let exit = await execution.waitForExit(replica: replica)
                    await self.handle { $0.processExited(replica: replica, code: exit.code, detail: exit.detail) }
                }
            }
            for parameter in transfers {
                group.addTask {
                    let error = await self.transfer(parameter)
                    await self.handle { $0.transferEnded(parameter: parameter.name, error: error) }
                }
            }
            group.addTask {
                let due = await untilTriggered(self.finished) {
                    // The clock is read again at least every second: an injected clock may jump, and a far deadline
                    // never turns into a sleep too long to represent.
                    while !Task.isCancelled {
                        let remaining = self.deadline.timeIntervalSince(self.engine.clock.now())
                        if remaining <= 0 { return true }
                        let step = Int64((min(remaining, 1) * 1000).rounded(.up))
                        guard (try? await Task.sleep(for: .milliseconds(step))) != nil else { return false }
                    }
                    return false
                }
                if due == true { await self.handle { $0.timedOut() } }
            }
            group.addTask {
                _ = await untilTriggered(self.finished) { await self.cancel.wait() }
                // The trigger's state decides, not the return value: waits also end on task cancellation.
                if self.cancel.isFired { await self.handle { $0.cancelRequested() } }
            }
            group.addTask {
                _ = await untilTriggered(self.finished) { await self.shutdown.wait() }
                if self.shutdown.isFired { await self.handle { $0.shutdown() } }
            }
        }
        // The workers serve the job only: they stop when it ends.
        await workers?.terminate(grace: engine.configuration.terminationGrace)
    }

    /// The workers' replicas: host processes (or containers) like the job's, with `TYGER_<ENDPOINT>_PORT` each, no
    /// buffers, and their log lines marked `[worker-<i>] `.
    private func workerRequest(
        _ spec: Codespec,
        replicas: Int,
        endpoints: WorkerEndpoints,
        directory: String
    ) -> ExecutionRequest {
        let view = engine.executor.processView(
            runId: runId,
            pipesDirectory: engine.layout.runPipesPath(runId),
            workDirectory: engine.layout.runWorkPath(runId)
        )
        let launches = (0..<replicas).map { replica -> ReplicaLaunch in
            let env = RunEnvironment.make(
                codespec: spec,
                runId: runId,
                replica: replica,
                replicas: replicas,
                pipes: [:],
                base: view.inheritedEnvironment.merging(endpoints.workerEnvironment(replica: replica)) { _, b in b }
            )
            let command = (spec.command ?? []).map { RunEnvironment.expand($0, with: env) }
            let args = (spec.args ?? []).map { RunEnvironment.expand($0, with: env) }
            return ReplicaLaunch(
                arguments: command + args,
                commandCount: command.count,
                environment: env,
                workingDirectory: spec.workingDir.map { RunEnvironment.expand($0, with: env) } ?? view.workingDirectory,
                logPrefix: "[worker-\(replica)] "
            )
        }
        var request = ExecutionRequest(
            runId: runId,
            runDirectory: directory,
            pipesDirectory: engine.layout.runPipesPath(runId),
            image: spec.image,
            resources: spec.resources,
            replicas: launches
        )
        request.isWorkers = true
        request.workerPortVariables = endpoints.portVariables
        return request
    }

    /// Waits until every endpoint of every worker accepts TCP connections (looking every 50 ms).
    ///
    /// - Returns: `nil` when they do; otherwise what ends the run: a worker that exited first (the run fails), a
    ///   cancel, the deadline, or the server's shutdown.
    private func waitUntilReady(
        _ workers: any Execution,
        replicas: Int,
        endpoints: WorkerEndpoints
    ) async -> (@Sendable (inout RunLifecycle) -> RunLifecycle.Action)? {
        let exited = FirstWorkerExit()
        let watchers = (0..<replicas).map { replica in
            Task {
                let exit = await workers.waitForExit(replica: replica)
                exited.first.withLock { if $0 == nil { $0 = (replica, exit) } }
            }
        }
        defer { for watcher in watchers { watcher.cancel() } }
        while true {
            if let (replica, exit) = exited.first.withLock({ $0 }) {
                let how = exit.detail.map { "\(exit.code) (\($0))" } ?? "\(exit.code)"
                let message = "Worker \(replica) exited with code \(how) before its endpoints accepted connections"
                return { $0.startFailed(message) }
            }
            if cancel.isFired { return { $0.cancelRequested() } }
            if shutdown.isFired { return { $0.shutdown() } }
            if engine.clock.now() >= deadline { return { $0.timedOut() } }
            if await endpoints.notAccepting({ await workers.accepts(replica: $0, port: $1) }).isEmpty {
                // Workers a cluster placed are ready once it said where (with no endpoints too).
                if !workers.placesWorkers { return nil }
                if await workers.workerHosts() != nil { return nil }
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Creates the run directory (0700), one FIFO per buffer parameter, the log, and the launch of each replica (with
    /// `workerEnvironment`: where the run's workers listen).
    ///
    /// - Returns: The job's request (its replicas without workers), the log, and how to make its replicas again with
    ///   the workers' variables, once they run.
    private func prepare(
        directory: String,
        parameters: [Parameter]
    ) async throws -> (ExecutionRequest, RunLogWriter, @Sendable ([String: String]) -> [ReplicaLaunch]) {
        let run = currentRun
        guard let spec = run.resolvedCodespec else {
            throw TygerRunEngineError(.executorFailure, "the run has no resolved codespec")
        }
        let pipesDirectory = engine.layout.runPipesPath(runId)
        let workDirectory = engine.layout.runWorkPath(runId)
        for d in [directory, pipesDirectory, workDirectory] {
            guard mkdir(d, 0o700) == 0 || errno == EEXIST else {
                throw TygerRunEngineError(.executorFailure, "cannot create \(d): \(String(cString: strerror(errno)))")
            }
            _ = chmod(d, 0o700)
        }
        let view = engine.executor.processView(
            runId: runId,
            pipesDirectory: pipesDirectory,
            workDirectory: workDirectory
        )
        var pipes: [String: String] = [:]
        var openers: [String: FifoOpener] = [:]
        var processSide: [String: FifoOpener] = [:]
        let remote = engine.executor.movesOwnBuffers
        for parameter in parameters {
            let path = engine.layout.runPipePath(runId, parameter: parameter.name)
            pipes[parameter.name] = view.pipesDirectory + "/" + (path as NSString).lastPathComponent
            // The processes of an executor that moves its own buffers make their pipes where they run; only an
            // ephemeral buffer keeps a FIFO here, between the client's relay and the agent's.
            if remote && !parameter.isEphemeral { continue }
            try NamedPipe.create(at: path, mode: 0o600)
            openers[parameter.name] = FifoOpener(path: path, forWriting: parameter.isInput)
            if remote { processSide[parameter.name] = FifoOpener(path: path, forWriting: !parameter.isInput) }
        }
        var buffers: [BufferLaunch] = []
        var reportURL: String?
        var urlsExpireAt: Date?
        if remote {
            let signed = try await signedURLs(parameters: parameters)
            reportURL = signed.reportURL
            urlsExpireAt = RFC3339.parse(signed.expiresAt)
            buffers = parameters.map { parameter in
                BufferLaunch(
                    name: parameter.name,
                    isInput: parameter.isInput,
                    url: parameter.isEphemeral
                        ? AgentLaunch.pipeURL(reportURL: signed.reportURL, parameter: parameter.name)
                        : signed.buffers[parameter.name] ?? "",
                    pipe: pipes[parameter.name] ?? "",
                    isRelayed: parameter.isEphemeral
                )
            }
        }
        state.withLock {
            $0.openers = openers
            $0.processSideOpeners = processSide
            $0.prepared = true
        }
        let log = try RunLogWriter(path: engine.logPath(runId))
        let replicas = max(1, run.job.replicas)
        let runId = self.runId
        let launches: @Sendable ([String: String]) -> [ReplicaLaunch] = { [pipes] workerEnvironment in
            (0..<replicas).map { replica -> ReplicaLaunch in
                let replicaPipes = replica == 0 ? pipes : pipes.mapValues { _ in "/dev/null" }
                let env = RunEnvironment.make(
                    codespec: spec,
                    runId: runId,
                    replica: replica,
                    replicas: replicas,
                    pipes: replicaPipes,
                    base: view.inheritedEnvironment.merging(workerEnvironment) { _, worker in worker }
                )
                let command = (spec.command ?? []).map { RunEnvironment.expand($0, with: env) }
                let args = (spec.args ?? []).map { RunEnvironment.expand($0, with: env) }
                let workingDirectory =
                    spec.workingDir.map { RunEnvironment.expand($0, with: env) } ?? view.workingDirectory
                return ReplicaLaunch(
                    arguments: command + args,
                    commandCount: command.count,
                    environment: env,
                    workingDirectory: workingDirectory,
                    logPrefix: replicas == 1 ? "" : "[replica-\(replica)] "
                )
            }
        }
        var request = ExecutionRequest(
            runId: runId,
            runDirectory: directory,
            pipesDirectory: pipesDirectory,
            image: spec.image,
            resources: spec.resources,
            replicas: launches([:])
        )
        request.buffers = buffers
        request.reportURL = reportURL
        request.urlsExpireAt = urlsExpireAt
        request.deadline = deadline
        request.nodePool = run.job.nodePool
        return (request, log, launches)
    }

    /// For an executor that moves its own buffers: the report URL and an access URL per stored buffer parameter
    /// (read-only for inputs; an ephemeral buffer is relayed under the report URL), valid until five minutes past
    /// the deadline, at least 30 s and at most ``RunEngineConfiguration/remoteAccessLifetime`` (24 h): a longer run's
    /// agent renews them (``renewedURLs()``).
    func signedURLs(parameters: [Parameter]) async throws -> AgentRenewal {
        let configuration = engine.configuration
        guard let access = configuration.bufferAccessURL, let report = configuration.agentReportURL else {
            throw TygerRunEngineError(
                .executorFailure,
                "the \(engine.executor.description.kind) executor needs a TCP listener its jobs can reach (--tcp)"
            )
        }
        let now = engine.clock.now()
        let lifetime = Double(configuration.remoteAccessLifetime.components.seconds)
        let seconds = Int64(min(max(deadline.timeIntervalSince(now) + 300, 30), max(lifetime, 30)))
        let ttl = Duration.seconds(seconds)
        let reportURL = try report(runId, ttl)
        var buffers: [String: String] = [:]
        for parameter in parameters where !parameter.isEphemeral {
            buffers[parameter.name] = try await access(parameter.bufferId, !parameter.isInput, ttl)
        }
        // The signer counts from its own clock: said a little early rather than late.
        let expiresAt = now.addingTimeInterval(Double(seconds) - 1)
        return AgentRenewal(reportURL: reportURL, buffers: buffers, expiresAt: RFC3339.format(expiresAt))
    }

    /// Fresh URLs for the run's agents, while the run is live (`withBuffers`: the buffers' too, for the replica that
    /// moves them).
    ///
    /// - Throws: `TygerRunEngineError` `.notFound` once the run has ended.
    func renewedURLs(withBuffers: Bool) async throws -> AgentRenewal {
        guard isLive else { throw TygerRunEngineError(.notFound, "run \(runId) has ended") }
        return try await signedURLs(parameters: withBuffers ? parameters : [])
    }

    /// Streams one buffer parameter between its FIFO and its buffer.
    ///
    /// - Returns: An error message when the transfer failed in a way that fails the run; `nil` otherwise (including
    ///   an input side stopped because the processes are gone, and transfers abandoned by a stop).
    func transfer(_ parameter: Parameter) async -> String? {
        guard let opener = state.withLock({ $0.openers[parameter.name] }) else { return "no pipe" }
        let store = await engine.blobStore(parameter.bufferId)
        let stop = parameter.isInput ? stopInputs : stopOutputs
        let result: String?? = await untilTriggered(stop) { () -> String? in
            let descriptor: OwnedDescriptor
            do {
                descriptor = try await opener.openReleasingOnCancel()
            } catch {
                return "cannot open the pipe: \(error)"
            }
            if parameter.isInput {
                if opener.wasReleased || Task.isCancelled { return nil }
                guard let error = await PipeTransfer.feed(descriptor, from: store) else { return nil }
                return self.stopInputs.isFired ? nil : Self.describe(error)
            } else {
                // A "crashed" engine (test hook) must not complete buffers a dead server could not have completed.
                if Task.isCancelled || self.engine.crashed.withLock({ $0 }) { return nil }
                var options = WriteOptions()
                options.blockSize = self.engine.configuration.writeOptions.blockSize
                options.dop = self.engine.configuration.writeOptions.dop
                options.flushInterval = self.engine.configuration.writeOptions.flushInterval
                guard let error = await PipeTransfer.drain(descriptor, into: store, options: options) else {
                    return nil
                }
                return Task.isCancelled ? nil : Self.describe(error)
            }
        }
        if !parameter.isInput, result == nil || stopOutputs.isFired, !engine.crashed.withLock({ $0 }) {
            // Stopped before the buffer was complete: it must not look complete (or stay open forever).
            await BufferEnd.markFailedIfUnfinished(store)
        }
        return result ?? nil
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? TygerRunEngineError { return e.message }
        return "\(error)"
    }
}

/// The first worker replica that exited, and how.
private final class FirstWorkerExit: Sendable {
    let first = Mutex<(replica: Int, exit: ReplicaExit)?>(nil)
}
