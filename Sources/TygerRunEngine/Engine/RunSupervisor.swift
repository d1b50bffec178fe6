import Foundation
import Synchronization
import TygerModel
import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// Owns one live run: its lifecycle state machine, its FIFOs, the buffer transfers, the processes and the timers.
///
/// Events (process exits, transfer ends, the deadline, cancel) are fed to `RunLifecycle` under the lock; the actions
/// it returns are performed outside the lock by `perform(_:)`.
final class RunSupervisor: Sendable {
    let runId: Int64
    unowned let engine: RunEngine
    let deadline: Date

    struct Parameter: Sendable {
        var name: String
        var isInput: Bool
        var bufferId: String
        var isEphemeral: Bool { EphemeralBufferID.isEphemeral(bufferId) }
    }

    struct State {
        var lifecycle: RunLifecycle
        var run: Run
        var supervising = false
        var prepared = false
        var pipesReleased = false
        var execution: (any Execution)?
        var openers: [String: FifoOpener] = [:]
        /// For an executor that moves its own buffers: the process's side of each ephemeral buffer's FIFO, which
        /// the run's agent streams through the server (``RunEngine/withAgentInputPipe(runId:parameter:_:)``, ``RunEngine/withAgentOutputPipe(runId:parameter:_:)``).
        var processSideOpeners: [String: FifoOpener] = [:]
        var claimedEphemeral: Set<String> = []
    }
    let state: Mutex<State>
    /// Fired when a cancel was requested while supervising.
    let cancel = Trigger()
    /// Fired when the server shuts down.
    let shutdown = Trigger()
    /// Fired to abandon the input transfers (processes gone, or stopping).
    let stopInputs = Trigger()
    /// Fired to abandon the output transfers, failing their buffers (cancel, timeout, transfer failure).
    let stopOutputs = Trigger()
    /// Fired once the run is terminal.
    let finished = Trigger()

    init(run: Run, engine: RunEngine) {
        precondition(run.id != nil && run.createdAt != nil, "supervising a run that was not created")
        self.runId = run.id!  // checked above
        self.engine = engine
        self.deadline = run.createdAt!.addingTimeInterval(Double(run.effectiveTimeoutSeconds))  // checked above
        self.state = Mutex(State(lifecycle: RunLifecycle(timeoutSeconds: run.effectiveTimeoutSeconds), run: run))
    }

    var currentRun: Run { state.withLock { $0.run } }

    /// Whether the run's processes may still write logs.
    var isLive: Bool { !finished.isFired }

    var parameters: [Parameter] {
        let run = currentRun
        guard let spec = run.resolvedCodespec else { return [] }
        return spec.bufferParameters.map { p in
            Parameter(name: p.name, isInput: p.isInput, bufferId: run.job.buffers?[p.name] ?? "")
        }
    }

    // MARK: Events from outside

    /// Cancels: directly while nobody supervises the run yet, else through the supervision task.
    func requestCancel() async {
        let direct = state.withLock { s -> RunLifecycle.Action? in
            s.supervising ? nil : s.lifecycle.cancelRequested()
        }
        if let direct { await perform(direct) } else { cancel.fire() }
    }

    func requestShutdown() {
        let direct = state.withLock { s -> RunLifecycle.Action? in s.supervising ? nil : s.lifecycle.shutdown() }
        if direct != nil {
            // Not started: leave it Pending in the repository; the next server's recovery fails it.
            finished.fire()
        }
        shutdown.fire()
    }

    func timeoutIfPendingAndDue() async {
        guard engine.clock.now() >= deadline else { return }
        let direct = state.withLock { s -> RunLifecycle.Action? in s.supervising ? nil : s.lifecycle.timedOut() }
        if let direct { await perform(direct) }
    }

    func handle(_ event: @Sendable (inout RunLifecycle) -> RunLifecycle.Action) async {
        let action = state.withLock { event(&$0.lifecycle) }
        await perform(action)
    }

    /// Why a run still `Pending` waits in its cluster's queue: its status reason.
    func noteQueued(_ reason: String) async {
        let run = state.withLock { s -> Run? in
            guard s.lifecycle.status == .pending, !s.lifecycle.isFinished, s.run.statusReason != reason else {
                return nil
            }
            s.run.statusReason = reason
            return s.run
        }
        if let run { await persist(run) }
    }

    /// Persists a state of the run taken under the lock. The supervisor's tasks write concurrently (a queued run that
    /// begins while its process ends, a cancel beside the end), so a write may land after a later state's: when the
    /// run moved on meanwhile, its current state is written again, and the last write is never an older state.
    func persist(_ run: Run) async {
        await engine.persist(run)
        guard var current = state.withLock({ s -> Run? in s.run.status != run.status ? s.run : nil }) else { return }
        if current.status?.isTerminal == true { current.eTag = nil }  // as the final write does
        await engine.persist(current)
    }

    // MARK: Actions

    func perform(_ action: RunLifecycle.Action) async {
        switch action {
        case .none:
            return
        case .markRunning:
            let run = state.withLock { s -> Run in
                s.run.status = .running
                s.run.statusReason = nil  // why it was queued, if it was
                s.run.startedAt = engine.now()
                s.run.runningCount = s.lifecycle.runningCount
                return s.run
            }
            await persist(run)
        case .stop(let persistCanceling, let failOutputs):
            if persistCanceling {
                let run = state.withLock { s -> Run in
                    s.run.status = .canceling
                    s.run.statusReason = RunLifecycle.Reason.canceled
                    return s.run
                }
                await persist(run)
            }
            if failOutputs { stopOutputs.fire() }
            stopInputs.fire()
            releasePipes()
            let execution = state.withLock { $0.execution }
            await execution?.terminate(grace: engine.configuration.terminationGrace)
        case .releasePipes:
            stopInputs.fire()
            releasePipes()
        case .finish(let status, let reason, let failOutputs):
            releasePipes()
            var run = state.withLock { s -> Run in
                s.run.status = status
                s.run.statusReason = reason
                s.run.finishedAt = engine.now()
                s.run.runningCount = nil
                return s.run
            }
            if failOutputs { await engine.failUnfinishedOutputs(of: run) }
            run.eTag = nil
            // Before the final status is published: whoever sees the run ended sees its buffers' expiry too.
            await engine.expireCreatedBuffers(ofRun: runId, endedAt: run.finishedAt ?? engine.now())
            await persist(run)
            finished.fire()
        }
    }

    /// Makes every pending FIFO open return (see `FifoOpener.release()`); later ephemeral claims are refused.
    func releasePipes() {
        let openers = state.withLock { s -> [FifoOpener] in
            s.pipesReleased = true
            return Array(s.openers.values) + Array(s.processSideOpeners.values)
        }
        for o in openers { o.release() }
    }
}
