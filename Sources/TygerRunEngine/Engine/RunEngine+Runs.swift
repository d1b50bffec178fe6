public import Foundation
import Synchronization
public import TygerModel

extension RunEngine {
    // MARK: Codespecs

    /// Creates a new version of codespec `name`, or returns the latest when `spec` is equivalent to it.
    ///
    /// - Returns: The stored codespec (`version` 1 means the codespec is new: answer 201).
    /// - Throws: `TygerRunEngineError` `.invalidInput` for a bad name, a body name different from `name`, or an
    ///   invalid codespec; `.storage` when the repository fails.
    public func upsertCodespec(name: String, _ spec: Codespec) async throws -> Codespec {
        try Codespec.validateName(name)
        if let bodyName = spec.name, !bodyName.isEmpty, bodyName != name {
            throw TygerRunEngineError.invalid(
                "If provided, the codespec name in the body must match the name in the URL."
            )
        }
        var spec = spec.withoutSystemFields
        spec.name = name
        try spec.validate()
        spec.name = nil
        return try await codespecs.upsert(name: name, spec: spec, now: now())
    }

    /// The latest version of `name`, or version `version`.
    /// - Throws: `TygerRunEngineError` `.notFound` when there is no such codespec or version.
    public func codespec(name: String, version: Int? = nil) async throws -> Codespec {
        let found: Codespec?
        if let version {
            found = try await codespecs.get(name: name, version: version)
        } else {
            found = try await codespecs.latest(name: name)
        }
        guard let found else { throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage) }
        return found
    }

    /// The latest version of each codespec by name, and the name to continue after (when there may be more).
    public func listCodespecs(
        prefix: String?,
        limit: Int,
        after: String?
    ) async throws -> (items: [Codespec], next: String?) {
        let items = try await codespecs.list(prefix: prefix, limit: limit + 1, after: after)
        let page = Array(items.prefix(limit))
        return (page, items.count > limit ? page.last?.name : nil)
    }

    // MARK: Runs

    /// The run with `id`.
    /// - Throws: `TygerRunEngineError` `.notFound`.
    public func getRun(id: Int64) async throws -> Run {
        guard let run = try await runs.get(id: id) else {
            throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage)
        }
        return run
    }

    /// Runs newest first, and the position to continue after (when there may be more).
    public func listRuns(_ query: RunQuery) async throws -> (items: [Run], next: RunPosition?) {
        var probe = query
        probe.limit = query.limit + 1
        let items = try await runs.list(probe)
        let page = Array(items.prefix(query.limit))
        return (page, items.count > query.limit ? page.last.map(RunPosition.init) : nil)
    }

    /// The number of runs per status (only non-zero counts).
    public func runCounts(since: Date?, tags: [String: String]) async throws -> [RunStatus: Int] {
        try await runs.counts(since: since, tags: tags).filter { $0.value > 0 }
    }

    /// Cancels a run: a Pending run becomes Canceled at once; a Running one becomes Canceling, its output buffers
    /// are failed and its processes terminated (SIGTERM, grace, SIGKILL), then it becomes Canceled.
    ///
    /// - Returns: The run after the request (unchanged when already terminal).
    /// - Throws: `TygerRunEngineError` `.notFound`.
    public func cancelRun(id: Int64) async throws -> Run {
        var run = try await getRun(id: id)
        if (run.status ?? .pending).isTerminal { return run }
        if let supervisor = supervisor(id) {
            await supervisor.requestCancel()
            // Give the supervisor time to record Canceling/Canceled before answering. A run still starting (an
            // executor creating containers, pulling an image) takes the cancel once it has started: the answer says
            // Canceling then, as the cancel is under way.
            func taken(_ status: RunStatus?) -> Bool { status == .canceling || (status ?? .pending).isTerminal }
            for _ in 0..<500 where !taken(supervisor.currentRun.status) && !supervisor.finished.isFired {
                try? await Task.sleep(for: .milliseconds(10))
            }
            var answer = try await getRun(id: id)
            if !taken(answer.status) {
                answer.status = .canceling
                answer.statusReason = RunLifecycle.Reason.canceled
            }
            return answer
        }
        // Supervised by another server sharing the database: it takes the request from there.
        if let coordination {
            let staleBefore = ownerStaleBefore()
            if try await coordination.liveOtherOwner(ofRun: id, staleBefore: staleBefore) != nil {
                try await coordination.requestCancel(runId: id, now: now())
                var answer = run
                for _ in 0..<50 {
                    answer = try await getRun(id: id)
                    if answer.status == .canceling || (answer.status ?? .pending).isTerminal { return answer }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                answer.status = .canceling
                answer.statusReason = RunLifecycle.Reason.canceled
                return answer
            }
            // Its owner stopped: the run is taken over and failed now, as the heartbeat sweep would do.
            try await takeOverAbandonedRuns(coordination)
            run = try await getRun(id: id)
            if (run.status ?? .pending).isTerminal { return run }
            // Still not ended: a leftover of this server that recovery has not reached yet.
        }
        // Not supervised by any server (left from a previous one, before recovery ran).
        var canceled = run
        canceled.status = .canceled
        canceled.statusReason = RunLifecycle.Reason.canceled
        canceled.finishedAt = now()
        await failUnfinishedOutputs(of: canceled)
        await persist(canceled)
        return canceled
    }

    /// Replaces the tags of a run (`PUT /runs/{id}`, `tyger run set`), when `ifMatch` matches its ETag.
    ///
    /// - Parameters:
    ///   - id: The run.
    ///   - tags: The new tags; `nil` clears them.
    ///   - ifMatch: The `If-Match` header: `nil`, empty or `*` set no precondition.
    /// - Returns: The run with its new tags and ETag.
    /// - Throws: `TygerRunEngineError` `.notFound`, `.preconditionFailed` (ETag mismatch), `.invalidInput` (tag
    ///   rules).
    public func updateRunTags(id: Int64, tags: [String: String]?, ifMatch: String?) async throws -> Run {
        try TagValidation.validate(tags)
        let updated = try await runs.updateTags(id: id, tags: tags, ifMatch: ifMatch)
        if let supervisor = supervisor(id) { supervisor.state.withLock { $0.run.tags = tags } }
        watchers.publish(updated)
        return updated
    }

    /// The current state of a run and a stream of its later states (ending after a terminal one).
    /// - Throws: `TygerRunEngineError` `.notFound`.
    public func watch(id: Int64) async throws -> (current: Run, changes: AsyncStream<Run>) {
        if coordination != nil, supervisor(id) == nil {
            let current = try await getRun(id: id)
            if !(current.status ?? .pending).isTerminal {
                // Supervised by another server sharing the database (or by none): its states come from there.
                return (current, polledChanges(of: id, after: current, coordination!))
            }
        }
        let changes = watchers.subscribe(id)
        let current = try await getRun(id: id)
        return (current, changes)
    }

    /// The later states of run `id` as the database shows them, read as their notices come (or at the poll
    /// interval), ending after a terminal one.
    private func polledChanges(
        of id: Int64,
        after current: Run,
        _ coordination: any RunCoordination
    ) -> AsyncStream<Run> {
        let (stream, continuation) = AsyncStream.makeStream(of: Run.self, bufferingPolicy: .bufferingNewest(8))
        let interval = coordinationPollInterval(coordination)
        let signals = signals
        let poller = Task {
            var last = current.eTag
            // The first look comes at once: a change between the read of `current` and this task is not missed.
            var woken: Trigger? = nil
            while !Task.isCancelled {
                if let woken { await ChangeSignals.wait(woken, upTo: interval) }
                woken = signals.next(.run(id))
                guard let run = try? await runs.get(id: id) else { continue }
                if run.eTag != last {
                    last = run.eTag
                    continuation.yield(run)
                }
                if (run.status ?? .pending).isTerminal { break }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in poller.cancel() }
        return stream
    }

    /// A run's log.
    /// - Throws: `TygerRunEngineError` `.notFound` when the run does not exist.
    public func logs(id: Int64, options: RunLogOptions) async throws -> RunLogSequence {
        let run = try await getRun(id: id)
        let supervisor = supervisor(id)
        if supervisor == nil, let coordination {
            // Supervised by another server sharing the database (or ended): the log comes from there.
            let mirror = logMirror(id, coordination)
            try await mirror.sync()
            guard options.follow, !(run.status ?? .pending).isTerminal else {
                return RunLogSequence(path: logPath(id), options: options, isLive: { false })
            }
            await mirror.follow(
                interval: coordinationPollInterval(coordination),
                settle: configuration.cancelPollInterval,
                signals: signals
            )
            return RunLogSequence(path: logPath(id), options: options, isLive: { !mirror.ended.isFired })
        }
        return RunLogSequence(path: logPath(id), options: options, isLive: { supervisor?.isLive ?? false })
    }
}
