public import TygerModel

/// The lifecycle of one run as a pure state machine: events in, actions out, no I/O.
///
/// ```
/// Pending ──started──▶ Running (Pending while queued: `started(queued: true)` … `began`) ──all processes exited and all transfers ended──▶ Succeeded | Failed
///    │                   │ non-zero exit / transfer error ─▶ (stop the rest) ─▶ Failed
///    │                   │ timedOut / shutdown ─▶ stop ─▶ Failed (outputs failed)
///    │                   └ cancelRequested ─▶ Canceling ─▶ stop ─▶ Canceled (outputs failed)
///    ├─timedOut──────────▶ Failed "Run exceeded its timeout while pending"
///    ├─cancelRequested───▶ Canceled "Canceled by user"
///    └─startFailed───────▶ Failed "Failed to start the run: ..."
/// any non-terminal state ─serverRestarted─▶ Failed (runs are never restarted)
/// ```
/// The owner (`RunSupervisor`) calls the event methods under its lock and performs the returned action outside it.
public struct RunLifecycle: Sendable {
    /// What the owner must do after an event.
    public enum Action: Equatable, Sendable {
        /// Nothing.
        case none
        /// Persist `Running` with `startedAt` and the running count.
        case markRunning
        /// Stop everything still going: cancel the transfers (failing unfinished outputs when `failOutputs`), release
        /// pending FIFO opens, and terminate the processes (SIGTERM to the process group, grace, SIGKILL).
        /// `persistCanceling` asks to persist the `Canceling` status first.
        case stop(persistCanceling: Bool, failOutputs: Bool)
        /// Every process exited while transfers are still going: release pending FIFO opens (an output never opened
        /// completes empty) and stop the input side; output transfers drain.
        case releasePipes
        /// Persist the terminal status and reason; when `failOutputs`, mark every unfinished output buffer failed.
        case finish(RunStatus, reason: String?, failOutputs: Bool)
    }

    private struct Outcome: Equatable, Sendable {
        var status: RunStatus
        var reason: String?
        var failOutputs: Bool
    }

    private enum State: Equatable, Sendable {
        case pending
        case running(replicas: Int, processesLeft: Int, transfersLeft: Int, outcome: Outcome?)
        case finished(RunStatus)
    }

    private var state: State
    private let timeoutSeconds: Int
    /// Started, but its processes wait in a cluster's queue: the run shows `Pending` until ``began()``.
    private var queued = false

    /// Reasons, as shown in `statusReason`.
    public enum Reason {
        public static let canceled = "Canceled by user"
        public static let timedOutPending = "Run exceeded its timeout while pending"
        public static func timedOutRunning(_ seconds: Int) -> String {
            "Run exceeded its timeout of \(seconds) seconds while running"
        }
        public static let serverRestarted =
            "The server restarted while the run was in progress; runs are never restarted"
        public static let serverShutDown = "The server shut down while the run was in progress"
        public static func ownerStopped(_ instance: String) -> String {
            "The server running it (instance \(instance.isEmpty ? "unknown" : instance)) stopped while the run was in "
                + "progress; runs are never restarted"
        }
        public static func startFailed(_ message: String) -> String { "Failed to start the run: \(message)" }
        public static func exited(replica: Int, of replicas: Int, code: Int32, detail: String? = nil) -> String {
            let what = replicas == 1 ? "Main" : "Replica \(replica)"
            return "\(what) exited with code \(code)" + (detail.map { " (\($0))" } ?? "")
        }
        public static func transferFailed(parameter: String, message: String) -> String {
            "Buffer '\(parameter)': \(message)"
        }
    }

    /// A machine for a new run (Pending).
    public init(timeoutSeconds: Int = 43200) {
        self.state = .pending
        self.timeoutSeconds = timeoutSeconds
    }

    /// The status the machine is in (Canceling while a cancel is being carried out).
    public var status: RunStatus {
        switch state {
        case .pending: return .pending
        case .running(_, _, _, let outcome):
            if outcome?.status == .canceled { return .canceling }
            return queued ? .pending : .running
        case .finished(let status): return status
        }
    }

    /// Whether the run reached a terminal status.
    public var isFinished: Bool { if case .finished = state { true } else { false } }

    /// Processes running now, while Running.
    public var runningCount: Int? {
        if case .running(_, let left, _, _) = state, !queued { return left }
        return nil
    }

    /// The processes were spawned and `transfers` buffer transfers started; with `queued`, they were handed to a
    /// cluster that may keep them waiting (the run stays `Pending` until ``began()``).
    public mutating func started(replicas: Int, transfers: Int, queued: Bool = false) -> Action {
        guard case .pending = state else { return .none }
        precondition(replicas > 0, "a run needs at least one replica, got \(replicas)")
        state = .running(replicas: replicas, processesLeft: replicas, transfersLeft: transfers, outcome: nil)
        self.queued = queued
        return queued ? .none : .markRunning
    }

    /// A queued run's processes left the queue (the first of them started).
    public mutating func began() -> Action {
        guard queued, case .running(_, _, _, let outcome) = state else { return .none }
        queued = false
        return outcome == nil ? .markRunning : .none
    }

    /// Spawning failed; nothing was started.
    public mutating func startFailed(_ message: String) -> Action {
        switch state {
        case .pending, .running:
            state = .finished(.failed)
            return .finish(.failed, reason: Reason.startFailed(message), failOutputs: true)
        case .finished:
            return .none
        }
    }

    /// Replica `replica` exited with `code` (128 + signal when killed).
    public mutating func processExited(replica: Int, code: Int32, detail: String? = nil) -> Action {
        guard case .running(let replicas, var processesLeft, let transfersLeft, var outcome) = state else {
            return .none
        }
        precondition(processesLeft > 0, "more exits than processes")
        processesLeft -= 1
        var stopOthers = false
        if code != 0 && outcome == nil {
            outcome = Outcome(
                status: .failed,
                reason: Reason.exited(replica: replica, of: replicas, code: code, detail: detail),
                failOutputs: false
            )
            stopOthers = processesLeft > 0
        }
        state = .running(
            replicas: replicas,
            processesLeft: processesLeft,
            transfersLeft: transfersLeft,
            outcome: outcome
        )
        if stopOthers { return .stop(persistCanceling: false, failOutputs: false) }
        if processesLeft == 0 { return transfersLeft == 0 ? finishNow() : .releasePipes }
        return .none
    }

    /// The transfer of one buffer parameter ended, with `error` when it failed.
    ///
    /// The owner reports an input side that stopped because the process went away (broken pipe, cancelled after
    /// exit) as a success: a process may read only part of its input.
    public mutating func transferEnded(parameter: String, error: String?) -> Action {
        guard case .running(let replicas, let processesLeft, var transfersLeft, var outcome) = state else {
            return .none
        }
        precondition(transfersLeft > 0, "more transfer ends than transfers")
        transfersLeft -= 1
        var stop = false
        if let error, outcome == nil {
            outcome = Outcome(
                status: .failed,
                reason: Reason.transferFailed(parameter: parameter, message: error),
                failOutputs: true
            )
            stop = processesLeft > 0 || transfersLeft > 0
        }
        state = .running(
            replicas: replicas,
            processesLeft: processesLeft,
            transfersLeft: transfersLeft,
            outcome: outcome
        )
        if processesLeft == 0 && transfersLeft == 0 { return finishNow() }
        return stop ? .stop(persistCanceling: false, failOutputs: true) : .none
    }

    /// The run's deadline (creation + timeout) passed.
    public mutating func timedOut() -> Action {
        let pending = Outcome(status: .failed, reason: Reason.timedOutPending, failOutputs: true)
        return stopOrFinish(
            queued
                ? pending : Outcome(status: .failed, reason: Reason.timedOutRunning(timeoutSeconds), failOutputs: true),
            ifPending: pending
        )
    }

    /// A user asked to cancel the run.
    public mutating func cancelRequested() -> Action {
        let outcome = Outcome(status: .canceled, reason: Reason.canceled, failOutputs: true)
        return stopOrFinish(outcome, ifPending: outcome)
    }

    /// The server is shutting down while the run is live.
    public mutating func shutdown() -> Action {
        let outcome = Outcome(status: .failed, reason: Reason.serverShutDown, failOutputs: true)
        return stopOrFinish(outcome, ifPending: outcome)
    }

    /// The server restarted and found this run not terminal: it is failed, never restarted.
    public mutating func serverRestarted() -> Action {
        if case .finished = state { return .none }
        state = .finished(.failed)
        return .finish(.failed, reason: Reason.serverRestarted, failOutputs: true)
    }

    private mutating func stopOrFinish(_ outcome: Outcome, ifPending: Outcome) -> Action {
        switch state {
        case .pending:
            state = .finished(ifPending.status)
            return .finish(ifPending.status, reason: ifPending.reason, failOutputs: ifPending.failOutputs)
        case .running(let replicas, let processesLeft, let transfersLeft, let current):
            if let current, current.failOutputs || current.status == .canceled { return .none }
            // A failure already decided (non-zero exit) still upgrades to a cancel/timeout that fails the outputs.
            state = .running(
                replicas: replicas,
                processesLeft: processesLeft,
                transfersLeft: transfersLeft,
                outcome: outcome
            )
            if processesLeft == 0 && transfersLeft == 0 { return finishNow() }
            return .stop(persistCanceling: outcome.status == .canceled, failOutputs: true)
        case .finished:
            return .none
        }
    }

    private mutating func finishNow() -> Action {
        guard case .running(_, _, _, let outcome) = state else { return .none }
        let final = outcome ?? Outcome(status: .succeeded, reason: nil, failOutputs: false)
        state = .finished(final.status)
        return .finish(final.status, reason: final.reason, failOutputs: final.failOutputs)
    }
}
