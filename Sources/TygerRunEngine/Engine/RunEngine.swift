public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import TygerCore
import TygerIO
public import TygerModel
public import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// Codespecs and runs: creation, supervision of live runs, logs, cancellation, watch streams and the ephemeral
/// buffer relay. Conforms to `Service`: run it in the server's `ServiceGroup`; runs start only while it runs.
///
/// ```swift
/// let store = try SQLiteRunEngineStore(directory: dataDir + "/db")
/// let engine = RunEngine(
///     configuration: RunEngineConfiguration(dataDirectory: dataDir),
///     codespecs: store.codespecs, runs: store.runs,
///     blobStore: { id in FileBlobStore(directory: buffersDir + "/" + id) },
///     createBuffer: { tags, expiresAt in try await buffers.create(tags: tags, expiresAt: expiresAt).id },
///     logger: logger)
/// ```
public final class RunEngine: Service, Sendable {
    let configuration: RunEngineConfiguration
    let codespecs: any CodespecRepository
    let runs: any RunRepository
    let executor: any Executor

    /// The executor, when its processes report over HTTP (the server's agent routes).
    public var agentReceiver: (any RunAgentReceiver)? { executor as? any RunAgentReceiver }
    /// How the servers sharing the database divide the runs; `nil` when this server is alone on it.
    let coordination: (any RunCoordination)?
    let blobStore: @Sendable (String) async -> any BlobStore
    let createBuffer: @Sendable ([String: String], Date?) async throws -> String
    let expireBuffers: @Sendable ([String], Date) async throws -> Void
    /// The buffers each live run created whose expiry is set when the run ends (``RunEngineConfiguration/runBufferTTL``).
    let buffersExpiringAtEnd = Mutex<[Int64: [String]]>([:])
    let bufferExists: @Sendable (String) async throws -> Bool
    let logger: Logger
    let watchers = RunWatchers()
    let supervisors = Mutex<[Int64: RunSupervisor]>([:])
    private let startQueue: (stream: AsyncStream<RunSupervisor>, continuation: AsyncStream<RunSupervisor>.Continuation)
    /// Where "now" comes from: creation, start and finish times, deadlines.
    let clock: WallClock
    /// When this engine was created: runs created before it belong to a previous server (restart recovery).
    let createdAt: Date
    /// Creates in flight by `Idempotency-Key`: a concurrent retry waits for the first attempt.
    let inFlightCreates = Mutex<[String: Task<Run, any Error>]>([:])
    /// Fired when the service begins shutting down.
    let stopping = Trigger()
    /// Set by `_simulateCrash()`: supervisors stop persisting anything, as if the process had died.
    let crashed = Mutex(false)
    /// Run states the database refused (it could not be reached), latest per run, with a version each; written by one
    /// retrying task until the database takes them (``persist(_:)``).
    let unpersisted = Mutex<(runs: [Int64: (run: Run, version: Int)], version: Int, retrying: Bool)>(([:], 0, false))
    /// Copies of the logs of runs other servers supervise, by run (servers sharing a database).
    let logMirrors = Mutex<[Int64: RunLogMirror]>([:])
    /// Wake-ups from the shared database's notices, for the loops that follow it.
    let signals = ChangeSignals()
    /// How long the retrying task waits between attempts to store refused run states.
    static let persistRetryInterval: Duration = .seconds(1)

    /// Creates an engine.
    ///
    /// - Parameters:
    ///   - configuration: Data directory and timings.
    ///   - codespecs: Where codespecs are kept.
    ///   - runs: Where runs are kept.
    ///   - executor: What runs processes; default `LocalProcessExecutor()`.
    ///   - coordination: With a database other servers share: run owners, heartbeats, cancel requests.
    ///   - blobStore: The blob store of a buffer, by buffer ID (the server's: a `FileBlobStore` directory, its S3
    ///     store, or a data plane of its own process).
    ///   - createBuffer: Creates a buffer with tags and an expiry time (`nil`: never) and returns its ID (for
    ///     parameters without an argument).
    ///   - expireBuffers: Sets the expiry time of buffers the run created, when it ends; default: nothing.
    ///   - bufferExists: Whether a buffer ID given as an argument exists (active); default: always.
    ///   - clock: Where the current time comes from; default the system clock.
    ///   - logger: For debug and trace messages.
    public init(
        configuration: RunEngineConfiguration,
        codespecs: any CodespecRepository,
        runs: any RunRepository,
        executor: any Executor = LocalProcessExecutor(),
        coordination: (any RunCoordination)? = nil,
        blobStore: @escaping @Sendable (String) async -> any BlobStore,
        createBuffer: @escaping @Sendable ([String: String], Date?) async throws -> String,
        expireBuffers: @escaping @Sendable ([String], Date) async throws -> Void = { _, _ in },
        bufferExists: @escaping @Sendable (String) async throws -> Bool = { _ in true },
        clock: WallClock = .system,
        logger: Logger
    ) {
        self.clock = clock
        self.createdAt = RFC3339.normalize(clock.now())
        self.configuration = configuration
        self.layout = DataDirectoryLayout(root: configuration.dataDirectory)
        self.codespecs = codespecs
        self.runs = runs
        self.executor = executor
        self.coordination = coordination
        self.blobStore = blobStore
        self.createBuffer = createBuffer
        self.expireBuffers = expireBuffers
        self.bufferExists = bufferExists
        self.logger = logger
        self.startQueue = AsyncStream.makeStream(of: RunSupervisor.self)
        FileDescriptorOps.ignoreSIGPIPE()
    }

    /// The current time, at the microsecond precision runs are stored with.
    func now() -> Date { RFC3339.normalize(clock.now()) }

    /// The paths of `configuration.dataDirectory`.
    let layout: DataDirectoryLayout
    var logsDirectory: String { layout.logsPath }
    func runDirectory(_ id: Int64) -> String { layout.runPath(id) }
    func logPath(_ id: Int64) -> String { layout.runLogPath(id) }

    /// Recovers runs a previous server left in flight, then starts and supervises runs until shutdown.
    ///
    /// On graceful shutdown (or cancellation) live runs are stopped and marked Failed ("The server shut down ...").
    /// - Throws: `TygerRunEngineError` `.storage` when recovery cannot read or write the repository.
    public func run() async throws {
        try FileManager.default.createDirectory(atPath: layout.runsPath, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logsDirectory, withIntermediateDirectories: true)
        _ = chmod(layout.runsPath, 0o700)
        // A database that is away at start (or goes away now) is waited for: the server serves meanwhile.
        while true {
            do {
                if let coordination {
                    try await coordination.heartbeat(now: now(), endpoint: configuration.advertisedEndpoint())
                }
                try await recoverInterruptedRuns()
                logger.info("ready to run")
                break
            } catch let error as TygerRunEngineError where error.code == .unavailable {
                logger.warning("cannot recover interrupted runs yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.sweepPendingTimeouts() }
                    if let coordination = self.coordination {
                        group.addTask { await self.beatAndTakeOver(coordination) }
                        group.addTask { await self.pollCancelRequests(coordination) }
                        group.addTask {
                            let signals = self.signals
                            _ = await untilTriggered(self.stopping) { await coordination.listen { signals.fire($0) } }
                        }
                    }
                    for await supervisor in startQueue.stream {
                        group.addTask { await supervisor.supervise() }
                        if let coordination = self.coordination {
                            group.addTask { await self.shipLog(of: supervisor, coordination) }
                        }
                    }
                }
            } onCancel: {
                self.beginShutdown()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
    }

    private func beginShutdown() {
        stopping.fire()
        startQueue.continuation.finish()
        for supervisor in supervisors.withLock({ Array($0.values) }) { supervisor.requestShutdown() }
    }

    private func sweepPendingTimeouts() async {
        while !Task.isCancelled && !stopping.isFired {
            _ = await untilTriggered(stopping) { try? await Task.sleep(for: self.configuration.pendingSweepInterval) }
            for supervisor in supervisors.withLock({ Array($0.values) }) {
                await supervisor.timeoutIfPendingAndDue()
            }
        }
    }

    /// Fails every run a previous server left Pending, Running or Canceling, killing its leftover processes.
    ///
    /// With servers sharing the database: the runs this server owned before it restarted, and those of servers
    /// whose heartbeat stopped (taken over, so that one server only fails each).
    func recoverInterruptedRuns() async throws {
        guard let coordination else {
            for run in try await runs.nonTerminal() { try await recover(run, ownerStopped: nil) }
            return
        }
        for run in try await coordination.ownedNonTerminal() { try await recover(run, ownerStopped: nil) }
        try await takeOverAbandonedRuns(coordination)
    }

    /// Takes over and fails the runs of servers that stopped beating.
    func takeOverAbandonedRuns(_ coordination: any RunCoordination) async throws {
        let staleBefore = ownerStaleBefore()
        for (run, owner) in try await coordination.claimAbandoned(staleBefore: staleBefore) {
            logger.warning(
                "taking over a run whose server stopped",
                metadata: ["run.id": "\(run.id ?? 0)", "owner": "\(owner)"]
            )
            try await recover(run, ownerStopped: owner)
        }
    }

    /// Servers that have not beaten since this time are taken for stopped (now − ``RunEngineConfiguration/ownerLease``).
    func ownerStaleBefore() -> Date { RFC3339.adding(.zero - configuration.ownerLease, to: now()) }

    /// Beats every ``RunEngineConfiguration/heartbeatInterval`` and takes over the runs of servers that stopped.
    private func beatAndTakeOver(_ coordination: any RunCoordination) async {
        while !Task.isCancelled && !stopping.isFired {
            _ = await untilTriggered(stopping) { try? await Task.sleep(for: self.configuration.heartbeatInterval) }
            if stopping.isFired { return }
            do {
                try await coordination.heartbeat(now: now(), endpoint: configuration.advertisedEndpoint())
                try await stopRunsTakenOver(coordination)
                try await takeOverAbandonedRuns(coordination)
            } catch {
                logger.warning("cannot beat or take over runs", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Stops the runs this server supervises that another server took over while this one could not beat (cut off
    /// from the database): their state there is final, and this server's writes are refused.
    private func stopRunsTakenOver(_ coordination: any RunCoordination) async throws {
        let live = supervisors.withLock { Array($0.values) }.filter { !$0.finished.isFired }
        for id in try await coordination.takenOver(among: live.map(\.runId)) {
            logger.warning(
                "another server took over a run of this server; stopping it here",
                metadata: ["run.id": "\(id)"]
            )
            supervisor(id)?.requestShutdown()
        }
    }

    /// How long the loops that follow the shared database wait between looks when no notice wakes them.
    func coordinationPollInterval(_ coordination: any RunCoordination) -> Duration {
        coordination.notifies ? configuration.notifiedPollInterval : configuration.cancelPollInterval
    }

    /// Passes cancel requests made on other servers to this server's supervisors, as their notices come (or at the
    /// poll interval).
    private func pollCancelRequests(_ coordination: any RunCoordination) async {
        let interval = coordinationPollInterval(coordination)
        var woken = signals.next(.cancels)
        while !Task.isCancelled && !stopping.isFired {
            await ChangeSignals.wait(woken, upTo: interval, unless: stopping)
            if stopping.isFired { return }
            woken = signals.next(.cancels)
            guard let ids = try? await coordination.takeCancelRequests() else { continue }
            for id in ids {
                logger.debug("cancel requested on another server", metadata: ["run.id": "\(id)"])
                _ = try? await cancelRun(id: id)
            }
        }
    }

    /// Fails one leftover run (unless this engine supervises it): a run of this server's previous life
    /// (`ownerStopped` nil), or one taken over from a server that stopped.
    private func recover(_ run: Run, ownerStopped: String?) async throws {
        guard let id = run.id, supervisors.withLock({ $0[id] == nil }) else { return }
        // Runs this engine created (possibly while recovery runs) are live, not leftovers.
        if ownerStopped == nil && (run.createdAt ?? .distantPast) >= createdAt { return }
        let exits = await executor.recover(runId: id, runDirectory: runDirectory(id), previousOwner: ownerStopped)
        var lifecycle = RunLifecycle(timeoutSeconds: run.effectiveTimeoutSeconds)
        guard case .finish(var status, var reason, var failOutputs) = lifecycle.serverRestarted() else { return }
        if let ownerStopped { reason = RunLifecycle.Reason.ownerStopped(ownerStopped) }
        // A run without buffers whose replicas all ended by themselves meanwhile has its real outcome; a run with
        // buffers lost its data streams with the server, whatever its processes did.
        if let exits, !exits.isEmpty, run.resolvedCodespec?.bufferParameters.isEmpty ?? false {
            if let failed = exits.indices.first(where: { exits[$0].code != 0 }) {
                status = .failed
                reason = RunLifecycle.Reason.exited(
                    replica: failed,
                    of: exits.count,
                    code: exits[failed].code,
                    detail: exits[failed].detail
                )
            } else {
                status = .succeeded
                reason = nil
            }
            failOutputs = false
        }
        var updated = run
        updated.status = status
        updated.statusReason = reason
        updated.finishedAt = now()
        updated.runningCount = nil
        if failOutputs { await failUnfinishedOutputs(of: updated) }
        watchers.publish(try await runs.update(updated))
        try? FileManager.default.removeItem(atPath: runDirectory(id))
        logger.debug(
            "recovered interrupted run",
            metadata: ["run.id": "\(id)", "run.status": "\(status.rawValue)"]
        )
    }

    /// Sets the expiry of the buffers run `id` created to `endedAt` + ``RunEngineConfiguration/runBufferTTL``, once,
    /// when the run ends (runs with `job.bufferTtl` have theirs from creation).
    func expireCreatedBuffers(ofRun id: Int64, endedAt: Date) async {
        guard let ids = buffersExpiringAtEnd.withLock({ $0.removeValue(forKey: id) }), !ids.isEmpty,
            let ttl = configuration.runBufferTTL
        else { return }
        do {
            try await expireBuffers(ids, RFC3339.adding(ttl, to: endedAt))
        } catch {
            logger.debug(
                "could not set the expiry of a run's buffers",
                metadata: ["run.id": "\(id)", "error": "\(error)"]
            )
        }
    }

    /// Marks the output buffers of `run` that have no `.bufferend` failed.
    func failUnfinishedOutputs(of run: Run) async {
        guard let spec = run.resolvedCodespec else { return }
        for parameter in spec.buffers?.outputs ?? [] {
            guard let id = run.job.buffers?[parameter], !EphemeralBufferID.isEphemeral(id) else { continue }
            await BufferEnd.markFailedIfUnfinished(await blobStore(id))
        }
    }

    func enqueue(_ supervisor: RunSupervisor) {
        supervisors.withLock { $0[supervisor.runId] = supervisor }
        startQueue.continuation.yield(supervisor)
    }

    func supervisor(_ id: Int64) -> RunSupervisor? { supervisors.withLock { $0[id] } }

    func removeSupervisor(_ id: Int64) { _ = supervisors.withLock { $0.removeValue(forKey: id) } }

    /// Persists `run` and tells watchers, unless the engine was made to "crash" in a test.
    ///
    /// A state the database refuses is not lost: watchers learn it at once, and a background task stores the latest
    /// refused state of each run until the database takes it (a run that ends while the database is away is recorded
    /// as ended when it is back). While a run has a state waiting there, its newer states wait behind it, so an older
    /// one never overwrites a newer one.
    func persist(_ run: Run) async {
        if crashed.withLock({ $0 }) { return }
        guard let id = run.id else { return }
        if deferPersisting(run, id: id, onlyIfWaiting: true) {
            watchers.publish(run.withComputedETag)
            return
        }
        do {
            watchers.publish(try await runs.update(run))
        } catch let error as TygerRunEngineError where error.code == .conflict {
            // Taken over by another server: its record stands.
            logger.warning(
                "not storing the state of a run another server took over",
                metadata: ["run.id": "\(id)", "run.status": "\(run.status?.rawValue ?? "")"]
            )
        } catch {
            logger.warning(
                "cannot store a run's state; retrying in the background",
                metadata: ["run.id": "\(id)", "run.status": "\(run.status?.rawValue ?? "")", "error": "\(error)"]
            )
            watchers.publish(run.withComputedETag)
            deferPersisting(run, id: id, onlyIfWaiting: false)
        }
    }

    /// Queues `run` for the retrying task (started when none runs); with `onlyIfWaiting`, only when a state of the
    /// same run already waits. Returns whether it was queued.
    @discardableResult
    private func deferPersisting(_ run: Run, id: Int64, onlyIfWaiting: Bool) -> Bool {
        let (queued, start) = unpersisted.withLock { state -> (Bool, Bool) in
            if onlyIfWaiting && state.runs[id] == nil { return (false, false) }
            state.version += 1
            state.runs[id] = (run, state.version)
            defer { state.retrying = true }
            return (true, !state.retrying)
        }
        if start { Task { await retryPersisting() } }
        return queued
    }

    /// Stores the waiting run states until none is left (or the engine stops).
    private func retryPersisting() async {
        while !stopping.isFired {
            try? await Task.sleep(for: Self.persistRetryInterval)
            let waiting = unpersisted.withLock { $0.runs }
            for (id, entry) in waiting {
                do {
                    _ = try await runs.update(entry.run)
                } catch let error as TygerRunEngineError where error.code == .conflict {
                    // Taken over by another server meanwhile: its record stands.
                } catch {
                    break
                }
                // Stored: forget it unless a newer state came meanwhile (then the next round stores that one).
                unpersisted.withLock { state in
                    if state.runs[id]?.version == entry.version { state.runs[id] = nil }
                }
                logger.info("stored a run's state after a retry", metadata: ["run.id": "\(id)"])
            }
            let done = unpersisted.withLock { state -> Bool in
                if state.runs.isEmpty { state.retrying = false }
                return state.runs.isEmpty
            }
            if done { return }
        }
    }

    /// Test hook: behave as if the server process died now — nothing more is persisted, processes are left running.
    package func _simulateCrash() {
        crashed.withLock { $0 = true }
    }
}

/// Writes `.bufferend` `failed` on buffers that have no end yet.
package enum BufferEnd {
    package static func markFailedIfUnfinished(_ store: any BlobStore) async {
        guard (try? await store.containerExists()) == true, (try? await store.head(BufferBlobNames.end)) == nil else {
            return
        }
        let bytes = BufferEndMetadata.encoded(.failed)
        let md5 = Checksums.md5Base64(bytes)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try? await store.put(
            BufferBlobNames.end,
            bytes: UnsafeRawBufferPointer(copy),
            metadata: BlobMetadata(contentMD5: md5)
        )
    }
}
