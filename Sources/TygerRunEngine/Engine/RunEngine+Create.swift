import Foundation
import Logging
import Synchronization
public import TygerModel

extension RunEngine {
    /// Creates a run and queues it for execution; with an `Idempotency-Key`, a retry returns the first result.
    ///
    /// Resolves the codespec (stored resolved in `job.codespec`), checks that the executor can honour it, creates a
    /// buffer for every parameter without an argument (tags: `job.tags` + `bufferName`), turns `_` arguments into
    /// ephemeral buffer IDs `run-<id>-temp-<x>`, and stores the run as Pending.
    ///
    /// - Returns: The created run.
    /// - Throws: `TygerRunEngineError` `.invalidInput` with upstream's messages (unknown codespec or version, buffer
    ///   argument without a parameter, missing buffer, workers, invalid tags) or the executor's (resources that
    ///   cannot be honoured); `.storage`; what `createBuffer` throws.
    ///
    /// - Parameter pullImage: Pull the codespec's image before the run is created (`run create --pull`); a retry
    ///   with the same key does not pull again.
    public func createRun(_ request: Run, idempotencyKey: String? = nil, pullImage: Bool = false) async throws -> Run {
        guard let key = idempotencyKey, !key.isEmpty else {
            return try await create(request, idempotencyKey: nil, pullImage: pullImage)
        }
        if let existing = try await runs.run(idempotencyKey: key) { return existing }
        let (task, isFirst) = inFlightCreates.withLock { inFlight -> (Task<Run, any Error>, Bool) in
            if let running = inFlight[key] { return (running, false) }
            let task = Task { try await self.create(request, idempotencyKey: key, pullImage: pullImage) }
            inFlight[key] = task
            return (task, true)
        }
        defer { if isFirst { inFlightCreates.withLock { $0[key] = nil } } }
        do {
            return try await task.value
        } catch let error as TygerRunEngineError where error.code == .conflict {
            // Another server process stored the key first.
            if let existing = try await runs.run(idempotencyKey: key) { return existing }
            throw error
        }
    }

    /// The largest `timeoutSeconds` a run may ask for (`Int32.max`, about 68 years).
    public static let maxTimeoutSeconds = Int(Int32.max)
    /// The most replicas a run may ask for.
    public static let maxReplicas = 1000

    private func create(_ request: Run, idempotencyKey: String?, pullImage: Bool) async throws -> Run {
        if request.kind == "system" { throw TygerRunEngineError.invalid("System runs cannot be created directly") }
        var run = request.withoutSystemFields
        let spec = try await resolve(run.job.codespec)
        guard spec.kind == .job else {
            throw TygerRunEngineError.invalid(
                "The codespec for a run's job must be a job codespec, not a worker codespec"
            )
        }
        if var worker = run.worker {
            guard executor.runsWorkers else {
                throw TygerRunEngineError.invalid(
                    "Runs with workers are not supported by the \(executor.description.kind) executor (the process "
                        + "and docker executors run them on this machine)"
                )
            }
            let workerSpec = try await resolve(worker.codespec)
            guard workerSpec.kind == .worker else {
                throw TygerRunEngineError.invalid(
                    "The codespec for a run's worker must be a worker codespec, not a job codespec"
                )
            }
            let replicas = worker.replicas ?? 1
            guard (1...Self.maxReplicas).contains(replicas) else {
                throw TygerRunEngineError.invalid("worker.replicas must be between 1 and \(Self.maxReplicas)")
            }
            try await executor.validate(codespec: workerSpec, replicas: replicas)
            worker.codespec = .inline(workerSpec)
            worker.replicas = replicas
            run.worker = worker
        }
        guard run.job.replicas >= 1 else {
            throw TygerRunEngineError.invalid("The number of replicas must be at least 1")
        }
        guard run.job.replicas <= Self.maxReplicas else {
            throw TygerRunEngineError.invalid("job.replicas must be at most \(Self.maxReplicas)")
        }
        if let t = run.timeoutSeconds, t <= 0 {
            throw TygerRunEngineError.invalid("timeoutSeconds must be a positive integer")
        }
        if let t = run.timeoutSeconds, t > Self.maxTimeoutSeconds {
            throw TygerRunEngineError.invalid("timeoutSeconds must be at most \(Self.maxTimeoutSeconds)")
        }
        for (field, value) in [("job.bufferTtl", run.job.bufferTtl), ("bufferAccessTtl", run.bufferAccessTtl)] {
            if let value, TimeSpan.parse(value) == nil {
                throw TygerRunEngineError.invalid(
                    "\(field) must be a non-negative TimeSpan such as 1.00:00:00 (at most 10675199 days), got '\(value)'"
                )
            }
        }
        try TagValidation.validate(run.tags)
        try TagValidation.validate(run.job.tags)
        if pullImage { try await executor.pullImage(of: spec) }
        try await executor.validate(codespec: spec, replicas: run.job.replicas)
        let bufferTTL = run.job.bufferTtl.flatMap(TimeSpan.parse)  // validated above
        let createdAt = now()
        // job.bufferTtl counts from creation (upstream); without it the server's runBufferTTL counts from the end,
        // bounded meanwhile by the timeout the run cannot outlive.
        let bufferExpiry: Date? =
            if let bufferTTL { RFC3339.adding(bufferTTL, to: createdAt) } else {
                configuration.runBufferTTL.map {
                    RFC3339.adding(.seconds(run.effectiveTimeoutSeconds) + $0, to: createdAt)
                }
            }
        var created: [String] = []

        var arguments: [String: String] = [:]
        let parameters = spec.bufferParameters
        for (argument, id) in run.job.buffers ?? [:] {
            guard let parameter = parameters.first(where: { $0.name.lowercased() == argument.lowercased() }) else {
                throw TygerRunEngineError.invalid(
                    "Buffer argument '\(argument)' does not correspond to a buffer parameter on the codespec"
                )
            }
            if id != "_" {
                guard try await bufferExists(id) else {
                    throw TygerRunEngineError.invalid("The buffer '\(id)' was not found")
                }
            }
            arguments[parameter.name] = id
        }
        for parameter in parameters where arguments[parameter.name] == nil {
            var tags = run.job.tags ?? [:]
            tags["bufferName"] = parameter.name
            let id = try await createBuffer(tags, bufferExpiry)
            arguments[parameter.name] = id
            created.append(id)
        }
        run.job.codespec = .inline(spec)
        run.job.buffers = arguments
        run.timeoutSeconds = run.effectiveTimeoutSeconds
        run.status = .pending
        run.cluster = try await executor.placement(cluster: run.cluster, nodePool: run.job.nodePool)
        if let pool = run.worker?.nodePool { _ = try await executor.placement(cluster: run.cluster, nodePool: pool) }
        var stored = try await runs.create(run, now: createdAt, idempotencyKey: idempotencyKey)
        let id = stored.id!  // assigned by the repository
        if arguments.values.contains("_") {
            stored.job.buffers = arguments.mapValues { $0 == "_" ? EphemeralBufferID(runId: id).description : $0 }
            stored = try await runs.update(stored)
        }
        if bufferTTL == nil, configuration.runBufferTTL != nil, !created.isEmpty {
            buffersExpiringAtEnd.withLock { $0[id] = created }
        }
        enqueue(RunSupervisor(run: stored, engine: self))
        logger.debug("run created", metadata: ["run.id": "\(id)"])
        return stored
    }

    private func resolve(_ reference: CodespecReference) async throws -> Codespec {
        switch reference {
        case .inline(var spec):
            spec.name = nil
            spec.version = nil
            spec.createdAt = nil
            try spec.validate()
            return spec
        case .named(let text):
            let (name, version) = try CodespecReference.parse(text)
            if let version {
                if let found = try await codespecs.get(name: name, version: version) { return found }
                guard let latest = try await codespecs.latest(name: name) else {
                    throw TygerRunEngineError.invalid("The codespec '\(name)' was not found")
                }
                throw TygerRunEngineError.invalid(
                    "The version '\(version)' of codespec '\(name)' was not found. The latest version is '\(latest.version ?? 0)'."
                )
            }
            guard let latest = try await codespecs.latest(name: name) else {
                throw TygerRunEngineError.invalid("The codespec '\(name)' was not found")
            }
            return latest
        }
    }
}
