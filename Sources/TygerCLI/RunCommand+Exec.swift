import ArgumentParser
import Logging
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO
import TygerModel

extension RunCommand {
    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Create a run, stream stdin into its input buffer and its output buffer to stdout, and wait for it.",
            discussion: """
                The codespec may have at most one input buffer without a --buffer argument (it gets stdin) and one \
                such output buffer (it goes to stdout). Exit status: 0 when the run succeeds, 1 otherwise (with the \
                status reason on stderr), 130 on Ctrl-C (the run is canceled).

                --detach creates the run, prints its ID and leaves it going without any transfer; --attach ID \
                connects stdin (or -i FILE) and stdout (or -o FILE) to the stored input and output buffers of a run \
                made before, resuming where they stand: the input's write continues after its stored blobs (the same \
                input from its first byte: a file is moved past them, a pipe's bytes are checked against them), and \
                the output is read from the size of -o FILE (stdout: from its start). An interrupted exec (a lost \
                connection) leaves its run going: attach to it so. Ephemeral buffers cannot be resumed.
                """
        )
        @OptionGroup var spec: RunSpecOptions
        @Flag(help: "Stream the run's logs to stderr.") var logs = false
        @Flag(help: "With --logs, prefix log lines with timestamps.") var timestamps = false
        @Option(help: "Block size for the input buffer.") var blockSize: String = "4M"
        @Option(help: "Concurrent uploads of the input buffer (default: 16).")
        var writeDop: Int?
        @Option(help: "Concurrent downloads of the output buffer.") var readDop: Int = 32
        @Flag(
            name: [.short, .long],
            help: "Do not report the transfers' progress (bytes and rate of stdin and stdout, on stderr)."
        )
        var quiet = false
        @Option(name: [.short, .customLong("input")], help: "Read the input buffer's data from this file, not stdin.")
        var inputFile: String?
        @Option(help: "The input's size (e.g. 10G), for the progress's percentage and time left when it is a pipe.")
        var size: String?
        @Option(
            name: [.short, .customLong("output")],
            help: "Write the output buffer's data to this file, not stdout."
        )
        var outputFile: String?
        @Flag(help: "Create the run, print its ID and leave it going (attach with --attach ID).") var detach = false
        @Option(help: "Attach to run ID made before: stream stdin and stdout to its stored buffers, resuming them.")
        var attach: String?
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            _ = try parseSize(blockSize, option: "--block-size")
            if let size { _ = try parseSize(size, option: "--size") }
            try validateDop(writeDop, option: "--write-dop")
            try validateDop(readDop, option: "--read-dop")
            if detach, attach != nil { throw ValidationError("--detach and --attach cannot be used together") }
            if detach, inputFile != nil || outputFile != nil {
                throw ValidationError("--detach moves no data: give -i and -o to run exec --attach")
            }
        }

        func run() async throws {
            let blockSize = Int(try parseSize(blockSize, option: "--block-size"))
            let runIDBox = RunIDBox()
            let request = attach == nil ? try spec.runRequest() : nil
            do {
                try await withSignalCancellation {
                    try await withConnection { connection in
                        if let request {
                            try await execute(request, blockSize: blockSize, connection: connection, runIDBox: runIDBox)
                        } else if let attach {
                            runIDBox.id = attach
                            try await attachTo(attach, blockSize: blockSize, connection: connection)
                        }
                    }
                }
            } catch is CancellationError {
                if let id = runIDBox.id {
                    _ = try? await withConnection { try await $0.client.cancelRun(id: id) }
                    logger.warning("Run canceled", metadata: ["runId": "\(id)"])
                }
                throw CancellationError()
            }
        }

        private func execute(_ request: Run, blockSize: Int, connection: Connection, runIDBox: RunIDBox) async throws {
            let (inputs, outputs) = try await codespecParameters(request.job.codespec, connection: connection)
            let arguments = request.job.buffers ?? [:]
            func unmapped(_ names: [String]) -> [String] {
                names.filter { name in
                    let arg = arguments.first { $0.key.lowercased() == name.lowercased() }?.value
                    return arg == nil || arg == "_"
                }
            }
            let stdinParams = unmapped(inputs)
            let stdoutParams = unmapped(outputs)
            if stdinParams.count > 1 {
                throw CommandFailure("exec cannot be called if the job has multiple unmapped input buffers")
            }
            if stdoutParams.count > 1 {
                throw CommandFailure("exec cannot be called if the job has multiple unmapped output buffers")
            }

            // The input file opens before the run is created: a missing one creates nothing.
            if inputFile != nil && stdinParams.isEmpty {
                throw CommandFailure("--input: the codespec has no input buffer left for it (each has a --buffer)")
            }
            let fd = try await openInput()
            defer { if inputFile != nil { FileDescriptorOps.close(fd) } }
            if outputFile != nil && stdoutParams.isEmpty {
                throw CommandFailure("--output: the codespec has no output buffer left for it (each has a --buffer)")
            }
            let output = try await openOutput(resuming: false)
            defer { if outputFile != nil { FileDescriptorOps.close(output.fd) } }

            let run = try await createRun(request, pull: spec.pull, connection: connection)
            let id = runID(run)
            runIDBox.id = id
            logger.info("Run created", metadata: ["runId": "\(id)"])
            if detach {
                try Console.line(id)
                return
            }
            try await stream(
                run,
                inputParameter: stdinParams.first,
                outputParameter: stdoutParams.first,
                input: fd,
                output: output,
                resuming: false,
                blockSize: blockSize,
                connection: connection
            )
        }

        /// `--attach ID`: the run's one input and one output buffer (those of its codespec), streamed as `exec` does,
        /// resuming them.
        private func attachTo(_ id: String, blockSize: Int, connection: Connection) async throws {
            let run = try await connection.client.getRun(id: id)
            let (inputs, outputs) = try await codespecParameters(run.job.codespec, connection: connection)
            if inputs.count > 1 || outputs.count > 1 {
                throw CommandFailure(
                    "run \(id) has \(inputs.count) input and \(outputs.count) output buffers: --attach connects one of "
                        + "each (read and write the others with tyger buffer read/write)"
                )
            }
            if inputFile != nil && inputs.isEmpty {
                throw CommandFailure("--input: run \(id) has no input buffer")
            }
            if outputFile != nil && outputs.isEmpty { throw CommandFailure("--output: run \(id) has no output buffer") }
            let fd = try await openInput()
            defer { if inputFile != nil { FileDescriptorOps.close(fd) } }
            let output = try await openOutput(resuming: true)
            defer { if outputFile != nil { FileDescriptorOps.close(output.fd) } }
            logger.info("Attached", metadata: ["runId": "\(id)", "status": "\(run.status?.rawValue ?? "?")"])
            try await stream(
                run,
                inputParameter: inputs.first,
                outputParameter: outputs.first,
                input: fd,
                output: output,
                resuming: true,
                blockSize: blockSize,
                connection: connection
            )
        }

        /// The input's descriptor: stdin, or `-i FILE`.
        private func openInput() async throws -> Int32 {
            guard let inputFile else { return 0 }
            return try await openPath(inputFile, forWriting: false)
        }

        /// The output's descriptor (stdout, or `-o FILE`) and where its buffer is read from: attached, from the file's
        /// size (it is appended to); else from the start (the file is truncated).
        private func openOutput(resuming: Bool) async throws -> (fd: Int32, offset: Int64) {
            guard let outputFile else { return (1, 0) }
            if !resuming { return (try await openPath(outputFile, forWriting: true), 0) }
            let fd = try await openForAppending(outputFile)
            return (fd, FileDescriptorOps.size(fd) ?? 0)
        }

        /// Streams the input into the run's input buffer and its output buffer out, with progress, to the run's end.
        private func stream(
            _ run: Run,
            inputParameter: String?,
            outputParameter: String?,
            input fd: Int32,
            output: (fd: Int32, offset: Int64),
            resuming: Bool,
            blockSize: Int,
            connection: Connection
        ) async throws {
            let id = runID(run)
            let runBuffers = run.job.buffers ?? [:]
            func bufferID(_ param: String) throws -> String {
                guard let value = runBuffers.first(where: { $0.key.lowercased() == param.lowercased() })?.value else {
                    throw CommandFailure("the run has no buffer for parameter '\(param)'")
                }
                return value
            }
            let inputID = try inputParameter.map(bufferID)
            let outputID = try outputParameter.map(bufferID)
            // The run's bufferAccessTtl bounds the access URLs of its buffers, as upstream's CLI asks for them.
            let accessTTL = run.bufferAccessTtl.flatMap(TimeSpan.parse).map { ttlText(seconds: $0.components.seconds) }
            let inputCounter = LockedCounter()
            let outputCounter = LockedCounter()
            let progress = ExecProgressReporter(
                input: inputID == nil ? nil : inputCounter,
                output: outputID == nil ? nil : outputCounter,
                // Attached, only the bytes after those stored are counted: no percentage then.
                inputSize: resuming
                    ? nil : try size.map { try parseSize($0, option: "--size") } ?? FileDescriptorOps.size(fd)
            )
            let reporting = quiet ? nil : Task { await progress.run() }
            do {
                try await transfer(
                    id: id,
                    input: fd,
                    inputID: inputID,
                    output: output,
                    outputID: outputID,
                    resuming: resuming,
                    counters: (inputCounter, outputCounter),
                    blockSize: blockSize,
                    accessTTL: accessTTL,
                    connection: connection
                )
            } catch {
                reporting?.cancel()
                await reporting?.value
                // A lost connection ends the transfers, not the run: say how to take them up again.
                if BufferWriter.isInterruption(error), !(error is CancellationError),
                    (error as? TygerCoreError)?.code != .cancelled
                {
                    throw CommandFailure(
                        "\(error); run \(id) goes on: tyger run exec --attach \(id) resumes its transfers"
                    )
                }
                throw error
            }
            reporting?.cancel()
            await reporting?.value
        }

        /// Streams stdin into the input buffer and the output buffer to stdout while following the run (and its logs
        /// with `--logs`) to its end.
        private func transfer(
            id: String,
            input fd: Int32,
            inputID: String?,
            output: (fd: Int32, offset: Int64),
            outputID: String?,
            resuming: Bool,
            counters: (input: LockedCounter, output: LockedCounter),
            blockSize: Int,
            accessTTL: String?,
            connection: Connection
        ) async throws {
            let (inputCounter, outputCounter) = counters
            let writeDop = writeDop
            let readDop = readDop
            let logs = logs
            let timestamps = timestamps

            // The run's own outcome explains a failure better than the data path does: a command that does not
            // exist fails the run's buffers too, and the reader would only say "permanently failed". So when a
            // buffer fails, the run's final status (for up to `failureGrace`) decides what is reported.
            try await withThrowingTaskGroup(of: ExecPart.self) { group in
                if let inputID {
                    group.addTask {
                        await ExecPart.transfer {
                            try await BufferLocation.$pacing.withValue(
                                BufferLocation.Pacing(inFlight: writeDop ?? defaultWriteDop)
                            ) {
                                try await BufferLocation.withResolved(
                                    inputID,
                                    write: true,
                                    accessTTL: accessTTL,
                                    // A resumed write takes the server's lease: never the embedded server's folder.
                                    allowFastPath: !resuming,
                                    connection: connection
                                ) { resolved in
                                    var options = WriteOptions()
                                    options.blockSize = blockSize
                                    options.dop = writeDop ?? defaultWriteDop
                                    options.createContainer = false
                                    let summary: TransferSummary
                                    if resuming, !resolved.isEphemeral {
                                        let resumed = try await BufferWriter.resume(
                                            from: DescriptorSource(fd: fd),
                                            to: resolved.store,
                                            options: options,
                                            input: resumedInput(fd),
                                            acceptComplete: true,
                                            bytesStored: inputCounter
                                        )
                                        summary = resumed.transfer
                                        logger.debug(
                                            "Input resumed",
                                            metadata: ["buffer": "\(inputID)", "from": "\(resumed.resumedAt)"]
                                        )
                                    } else {
                                        summary = try await resolved.write(
                                            from: fd,
                                            source: DescriptorSource(fd: fd),
                                            options: options,
                                            counter: inputCounter
                                        )
                                    }
                                    logger.debug(
                                        "Input written",
                                        metadata: ["buffer": "\(inputID)", "bytes": "\(summary.bytes)"]
                                    )
                                }
                            }
                        }
                    }
                }
                if let outputID {
                    group.addTask {
                        await ExecPart.transfer {
                            try await BufferLocation.$pacing.withValue(BufferLocation.Pacing(inFlight: readDop)) {
                                try await BufferLocation.withResolved(
                                    outputID,
                                    write: false,
                                    accessTTL: accessTTL,
                                    connection: connection
                                ) { resolved in
                                    var options = ReadOptions()
                                    options.dop = readDop
                                    options.offset = output.offset
                                    if output.offset > 0, resolved.isEphemeral {
                                        throw CommandFailure(
                                            "the output buffer is ephemeral: it cannot be read from an offset"
                                        )
                                    }
                                    let summary = try await resolved.read(
                                        to: output.fd,
                                        sink: DescriptorSink(fd: output.fd),
                                        options: options,
                                        counter: outputCounter
                                    )
                                    logger.debug(
                                        "Output read",
                                        metadata: ["buffer": "\(outputID)", "bytes": "\(summary.bytes)"]
                                    )
                                }
                            }
                        }
                    }
                }
                if logs {
                    group.addTask {
                        await ExecPart.transfer {
                            try await streamLogs(
                                id: id,
                                RunLogOptions(timestamps: timestamps, follow: true),
                                connection: connection
                            ) { chunk in try writeChunk(chunk, to: 2) }
                        }
                    }
                }
                group.addTask {
                    var last: RunStatus?
                    var final: Run?
                    try await watchRun(id: id, connection: connection) { run in
                        if run.status != last {
                            var metadata: Logger.Metadata = [
                                "status": "\(run.status?.rawValue ?? "?")", "runId": "\(id)",
                            ]
                            if let n = run.runningCount { metadata["runningCount"] = "\(n)" }
                            logger.info("Run status changed", metadata: metadata)
                            last = run.status
                        }
                        final = run
                    }
                    return .finished(final)
                }
                var transferFailure: (any Error)?
                while let part = try await group.next() {
                    switch part {
                    case .transferred: continue
                    case .finished(let run):
                        guard run?.status == .succeeded else { throw runFailure(run, id: id) }
                        if let transferFailure { throw transferFailure }
                    case .transferFailed(let error):
                        // Only a buffer the run marked failed (or abandoned) waits for the run's reason; a refused
                        // request or a lost connection is its own explanation.
                        guard let e = error as? TygerCoreError, e.code == .bufferFailed || e.code == .bufferAbandoned
                        else { throw error }
                        guard transferFailure == nil else { continue }
                        transferFailure = error
                        group.addTask {
                            try await Task.sleep(for: Self.failureGrace)
                            return .graceOver
                        }
                    case .graceOver:
                        if let transferFailure { throw transferFailure }
                    }
                }
                if let transferFailure { throw transferFailure }
            }
        }

        /// How long a failed transfer waits for the run's final status before it is reported itself.
        static let failureGrace: Duration = .seconds(10)

        /// A failed run: its status, its reason, and where to find its output.
        private func runFailure(_ run: Run?, id: String) -> CommandFailure {
            let status = run?.status?.rawValue ?? "?"
            let reason = run?.statusReason.map { " (\($0))" } ?? ""
            return CommandFailure("run \(id) failed with status \(status)\(reason); see its logs: tyger run logs \(id)")
        }
    }
}

/// What one task of `run exec` ended with.
private enum ExecPart: Sendable {
    /// A buffer transfer or the log stream completed.
    case transferred
    /// A buffer transfer or the log stream failed.
    case transferFailed(any Error)
    /// The run reached a final state (`nil` when the watch ended without one).
    case finished(Run?)
    /// The time a failed transfer waits for the run's outcome is over.
    case graceOver

    /// Runs a transfer and reports how it ended.
    static func transfer(_ body: () async throws -> Void) async -> ExecPart {
        do {
            try await body()
            return .transferred
        } catch {
            return .transferFailed(error)
        }
    }
}

/// Remembers the run being executed, for cancellation on Ctrl-C.
final class RunIDBox: @unchecked Sendable {
    // @unchecked: written once before any reader can look (the run is created before signals can cancel it).
    var id: String?
}

/// The input and output buffer names of the run's codespec (inline, or fetched by reference).
func codespecParameters(_ codespec: CodespecReference, connection: Connection) async throws -> ([String], [String]) {
    let spec: Codespec
    switch codespec {
    case .inline(let inline):
        spec = inline
    case .named(let reference):
        let (name, version) = try CodespecReference.parse(reference)
        do { spec = try await connection.client.getCodespec(name: name, version: version) } catch let error
            as TygerClientError where error.status == 404
        {
            // As `run create` says it (the bare 404 would be "NotFound: The resource was not found").
            throw CommandFailure("The codespec '\(reference)' was not found")
        }
    }
    return (spec.buffers?.inputs ?? [], spec.buffers?.outputs ?? [])
}
