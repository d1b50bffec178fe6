import Foundation
public import NIOCore
import Synchronization
import TygerCore
import TygerIO
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// The in-process relay of ephemeral buffers (`_` arguments): data goes between an HTTP request and the run's FIFO
/// without being stored. Each ephemeral buffer can be attached to once, while the run is live.
extension RunEngine {
    /// Which run parameter an ephemeral buffer ID (`run-<id>-temp-<x>`) stands for.
    ///
    /// - Returns: The run, the parameter and whether it is an input of the run (then the caller writes to it).
    /// - Throws: `TygerRunEngineError` `.notFound` when the ID is not an ephemeral buffer of an existing run.
    public func ephemeralTarget(bufferId: String) async throws -> (runId: Int64, parameter: String, isInput: Bool) {
        guard let runId = EphemeralBufferID(bufferId)?.runId, let run = try await runs.get(id: runId),
            let parameter = run.job.buffers?.first(where: { $0.value == bufferId })?.key,
            let spec = run.resolvedCodespec
        else { throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage) }
        return (runId, parameter, (spec.buffers?.inputs ?? []).contains(parameter))
    }

    /// The endpoint of the server that supervises run `runId` when it is another live server sharing the database
    /// (its ephemeral buffers are relayed there); `nil` when this server supervises it, or there is no other.
    public func ownerEndpoint(ofRun runId: Int64) async throws -> String? {
        guard let coordination, supervisor(runId) == nil else { return nil }
        let staleBefore = ownerStaleBefore()
        return try await coordination.ownerEndpoint(ofRun: runId, staleBefore: staleBefore)
    }

    /// The named pipe of an ephemeral buffer on this machine, for a caller on the same machine that opens it
    /// directly instead of going through the relay.
    ///
    /// Waits, polling every 20 ms for at most `timeout`, until the run has made its pipes.
    /// - Parameters:
    ///   - runId: The run.
    ///   - parameter: The buffer parameter whose argument was `_`.
    ///   - timeout: How long to wait for the pipe.
    /// - Returns: The pipe's path (``TygerCore/DataDirectoryLayout/runPipePath(_:parameter:)``), or `nil` when the
    ///   run finished first or did not make its pipes within `timeout`.
    /// - Throws: `TygerRunEngineError` `.notFound` when the run does not exist; `CancellationError`.
    public func ephemeralPipePath(
        runId: Int64,
        parameter: String,
        timeout: Duration = .seconds(30)
    ) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let supervisor = supervisor(runId) {
                let (prepared, finished) = supervisor.state.withLock {
                    ($0.prepared, $0.lifecycle.isFinished || $0.pipesReleased)
                }
                if finished { return nil }
                if prepared { return layout.runPipePath(runId, parameter: parameter) }
            } else if (try await getRun(id: runId).status ?? .pending).isTerminal {
                return nil
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Streams data into an ephemeral input of a live run (an HTTP PUT body into the FIFO).
    ///
    /// Waits until the process opens its end of the FIFO. If the process went away (or never opens it before the
    /// run ends), the writes are discarded, as upstream's relay does.
    /// - Parameters:
    ///   - runId: The run.
    ///   - parameter: An input parameter whose argument was `_`.
    ///   - body: Writes the data; the FIFO is closed (end of stream for the process) when it returns.
    /// - Returns: What `body` returns.
    /// - Throws: `TygerRunEngineError` `.notFound` (no live run), `.invalidInput` (not an ephemeral input),
    ///   `.alreadyCalled` (attached before), `.conflict` (the run has finished); what `body` throws.
    public func withEphemeralInput<R: Sendable>(
        runId: Int64,
        parameter: String,
        _ body: (EphemeralInputWriter) async throws -> R
    ) async throws -> R {
        let opener = try await claimEphemeral(runId: runId, parameter: parameter, isInput: true, processSide: false)
        return try await writing(through: opener, body)
    }

    /// For the agent of a run whose executor moves its own buffers (a Slurm job): streams what the remote process
    /// writes into an ephemeral output, into the process's side of its FIFO here (the client's relay reads the
    /// other side). As ``withEphemeralInput(runId:parameter:_:)``, for an output parameter.
    public func withAgentOutputPipe<R: Sendable>(
        runId: Int64,
        parameter: String,
        _ body: (EphemeralInputWriter) async throws -> R
    ) async throws -> R {
        let opener = try await claimEphemeral(runId: runId, parameter: parameter, isInput: false, processSide: true)
        return try await writing(through: opener, body)
    }

    /// For the agent of a run whose executor moves its own buffers: streams an ephemeral input from the process's
    /// side of its FIFO here (what the client's relay writes) to the remote process. As
    /// ``withEphemeralOutput(runId:parameter:_:)``, for an input parameter.
    public func withAgentInputPipe<R: Sendable>(
        runId: Int64,
        parameter: String,
        _ body: (EphemeralOutputReader) async throws -> R
    ) async throws -> R {
        let opener = try await claimEphemeral(runId: runId, parameter: parameter, isInput: true, processSide: true)
        return try await reading(through: opener, body)
    }

    /// For the agent of a run whose executor moves its own buffers: fresh signed URLs (reports, relays, stored
    /// buffers, `withBuffers`: for the replica that has them) for a run that outlasts them (``AgentRenewal``).
    ///
    /// - Throws: `TygerRunEngineError` `.notFound` when the run is not live on this server.
    public func agentRenewal(runId: Int64, withBuffers: Bool) async throws -> AgentRenewal {
        guard executor.movesOwnBuffers, let supervisor = supervisor(runId) else {
            throw TygerRunEngineError(.notFound, "run \(runId) is not running here")
        }
        return try await supervisor.renewedURLs(withBuffers: withBuffers)
    }

    /// Writes into a FIFO once `opener` opened it; writes are discarded once the reader went away.
    private func writing<R: Sendable>(
        through opener: FifoOpener,
        _ body: (EphemeralInputWriter) async throws -> R
    ) async throws -> R {
        let descriptor = try await opener.openReleasingOnCancel()
        if opener.wasReleased {
            return try await body(EphemeralInputWriter(queue: nil))
        }
        let queue = HandoffQueue<OutputChunk>(capacity: 4)
        let sink = FIFOSink(descriptor)
        async let pumped: Int64 = DedicatedThread.run(name: "tyger-relay-in") {
            try OutputPump.run(input: queue, sink: sink)
        }
        do {
            let result = try await body(EphemeralInputWriter(queue: queue))
            queue.close()
            _ = try? await pumped
            return result
        } catch {
            queue.fail(error)
            _ = try? await pumped
            throw error
        }
    }

    /// Streams an ephemeral output of a live run (the FIFO into an HTTP GET response).
    ///
    /// - Parameters:
    ///   - body: Reads the data; the sequence ends when the process closes its end.
    /// - Throws: As `withEphemeralInput`, and what `body` throws.
    public func withEphemeralOutput<R: Sendable>(
        runId: Int64,
        parameter: String,
        _ body: (EphemeralOutputReader) async throws -> R
    ) async throws -> R {
        let opener = try await claimEphemeral(runId: runId, parameter: parameter, isInput: false, processSide: false)
        return try await reading(through: opener, body)
    }

    /// Reads a FIFO once `opener` opened it, to its end.
    private func reading<R: Sendable>(
        through opener: FifoOpener,
        _ body: (EphemeralOutputReader) async throws -> R
    ) async throws -> R {
        let descriptor = try await opener.openReleasingOnCancel()
        let queue = HandoffQueue<ByteBuffer>(capacity: 4)
        DedicatedThread.start(name: "tyger-relay-out") {
            let allocator = ByteBufferAllocator()
            do {
                while true {
                    var buffer = allocator.buffer(capacity: 256 << 10)
                    let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 256 << 10) { raw in
                        try FileDescriptorOps.read(descriptor.fd, into: raw)
                    }
                    if n == 0 { break }
                    try queue.pushBlocking(buffer)
                }
                queue.close()
            } catch {
                queue.fail(error)
            }
        }
        defer { queue.fail(CancellationError()) }  // stops the reader thread if `body` returned early
        return try await body(EphemeralOutputReader(queue: queue))
    }

    /// Claims one side of an ephemeral buffer's FIFO (each side once): the client's relay, or the process's side
    /// that the agent of a remote job streams.
    private func claimEphemeral(
        runId: Int64,
        parameter: String,
        isInput: Bool,
        processSide: Bool
    ) async throws -> FifoOpener {
        guard let supervisor = supervisor(runId) else {
            _ = try await getRun(id: runId)
            throw TygerRunEngineError(
                .conflict,
                "The run \(runId) is not active: ephemeral buffers exist only while their run runs"
            )
        }
        guard let p = supervisor.parameters.first(where: { $0.name == parameter }), p.isEphemeral, p.isInput == isInput
        else {
            throw TygerRunEngineError.invalid(
                "'\(parameter)' is not an ephemeral \(isInput ? "input" : "output") buffer of run \(runId)"
            )
        }
        while true {
            let outcome = supervisor.state.withLock { s -> Result<FifoOpener?, TygerRunEngineError> in
                if s.lifecycle.isFinished || s.pipesReleased {
                    return .failure(
                        TygerRunEngineError(.conflict, "The run \(runId) has finished; its ephemeral buffers are gone")
                    )
                }
                guard s.prepared else { return .success(nil) }
                let claim = processSide ? "agent:" + parameter : parameter
                guard !s.claimedEphemeral.contains(claim) else {
                    return .failure(
                        TygerRunEngineError(
                            .alreadyCalled,
                            "The ephemeral buffer '\(parameter)' of run \(runId) was already attached to"
                        )
                    )
                }
                guard let opener = processSide ? s.processSideOpeners[parameter] : s.openers[parameter] else {
                    return .failure(
                        TygerRunEngineError(.invalidInput, "'\(parameter)' of run \(runId) has no pipe on this side")
                    )
                }
                s.claimedEphemeral.insert(claim)
                return .success(opener)
            }
            switch outcome {
            case .failure(let error): throw error
            case .success(let opener?): return opener
            case .success(nil): try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

/// Writes into an ephemeral input's FIFO; see `RunEngine.withEphemeralInput`.
public final class EphemeralInputWriter: Sendable {
    private let queue: HandoffQueue<OutputChunk>?
    private let discarding = Mutex(false)

    init(queue: HandoffQueue<OutputChunk>?) {
        self.queue = queue
        discarding.withLock { $0 = queue == nil }
    }

    /// Writes `buffer` (suspending while the pipe is full). Once the process has gone, data is discarded.
    /// - Throws: `TygerIOError` for failures other than the reader going away.
    public func write(_ buffer: ByteBuffer) async throws {
        guard let queue, !discarding.withLock({ $0 }), buffer.readableBytes > 0 else { return }
        let box = HeapBox(count: buffer.readableBytes)
        buffer.withUnsafeReadableBytes { box.memory.copyMemory(from: $0) }
        do {
            try await queue.push(
                OutputChunk(bytes: UnsafeRawBufferPointer(box.memory), immutablePages: false, owner: box)
            )
        } catch let error as TygerIOError where error.code == .brokenPipe {
            discarding.withLock { $0 = true }
        }
    }
}

/// Reads from an ephemeral output's FIFO; see `RunEngine.withEphemeralOutput`.
public struct EphemeralOutputReader: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let queue: HandoffQueue<ByteBuffer>

    public func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }

    public struct Iterator: AsyncIteratorProtocol {
        let queue: HandoffQueue<ByteBuffer>
        public mutating func next() async throws -> ByteBuffer? { try await queue.pop() }
    }
}

/// Heap memory owned by an object.
final class HeapBox: @unchecked Sendable {
    // @unchecked: filled once before it is shared, then only read.
    let memory: UnsafeMutableRawBufferPointer
    init(count: Int) { memory = .allocate(byteCount: max(count, 1), alignment: 16) }
    deinit { memory.deallocate() }
}
