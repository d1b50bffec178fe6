import Logging
import TygerCore
import TygerDataPath
import TygerIO

/// Reports a transfer's progress on stderr: a live line on a terminal, periodic log lines otherwise, and a final
/// summary in both cases.
struct ProgressReporter: Sendable {
    let operation: String
    let counter: LockedCounter
    let started = ContinuousClock.now

    /// Runs until cancelled.
    func run() async {
        guard logger.logLevel <= .info else { return }
        let live = Console.stderrIsTerminal
        var lastBytes: Int64 = 0
        var lastTime = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: live ? .milliseconds(250) : .seconds(2))
            if Task.isCancelled { break }
            let now = ContinuousClock.now
            let bytes = counter.value
            let rate = Double(bytes - lastBytes) / seconds(now - lastTime)
            lastBytes = bytes
            lastTime = now
            if bytes == 0 { continue }  // nothing moved yet (waiting for a writer, a server, a pipe)
            if live {
                let rateText = ByteSize.formatRate(rate)
                Console.writeError("\r\u{1B}[2K\(operation): \(ByteSize.format(bytes))  \(rateText)  \(elapsedText())")
            } else {
                logger.info(
                    "Transfer progress",
                    metadata: [
                        "operation": "\(operation)", "totalCompletedData": "\(ByteSize.format(bytes))",
                        "throughput": "\(ByteSize.formatRate(rate))",
                    ]
                )
            }
        }
        if live { Console.writeError("\r\u{1B}[2K") }
    }

    func summary(_ result: TransferSummary, extra: [(String, String)] = []) {
        let elapsed = seconds(ContinuousClock.now - started)
        var metadata: Logger.Metadata = [
            "operation": "\(operation)", "elapsed": "\(ByteSize.formatFixed(elapsed, digits: 2))s",
            "avgThroughput": "\(ByteSize.formatRate(Double(result.bytes) / max(elapsed, 1e-9)))",
            "totalCompletedData": "\(ByteSize.format(result.bytes))", "blobs": "\(result.blobs)",
        ]
        for (k, v) in extra { metadata[k] = "\(v)" }
        logger.info("Transfer complete", metadata: metadata)
    }

    private func elapsedText() -> String {
        ByteSize.formatFixed(seconds(ContinuousClock.now - started), digits: 1) + "s"
    }
}

/// Reports both directions of a `run exec` on stderr, as ``ProgressReporter`` does for one (as log lines every 2 s):
/// bytes and rate of the input (into the input buffer) and of the output (the output buffer to stdout); with the
/// input's size known (`-i FILE`, stdin a regular file, `--size`), its percentage and the time left.
struct ExecProgressReporter: Sendable {
    let input: LockedCounter?
    let output: LockedCounter?
    /// The input's size, when known.
    let inputSize: Int64?
    let started = ContinuousClock.now

    /// Runs until cancelled.
    func run() async {
        guard logger.logLevel <= .info, input != nil || output != nil else { return }
        // Log lines, also on a terminal: the run's status lines (and its logs with --logs) share stderr, and would
        // land in the middle of a line redrawn in place.
        var last: (input: Int64, output: Int64, time: ContinuousClock.Instant) = (0, 0, ContinuousClock.now)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            if Task.isCancelled { break }
            let now = ContinuousClock.now
            let (inBytes, outBytes) = (input?.value ?? 0, output?.value ?? 0)
            let elapsed = seconds(now - last.time)
            let (inRate, outRate) = (Double(inBytes - last.input) / elapsed, Double(outBytes - last.output) / elapsed)
            last = (inBytes, outBytes, now)
            if inBytes == 0 && outBytes == 0 { continue }  // nothing moved yet (the run is starting)
            var metadata: Logger.Metadata = ["operation": "run exec"]
            for (key, value) in describe(inBytes: inBytes, inRate: inRate, outBytes: outBytes, outRate: outRate) {
                metadata[key] = "\(value)"
            }
            logger.info("Transfer progress", metadata: metadata)
        }
    }

    /// The fields of one report: `input`, `output` (bytes and rate), `percent` and `eta` of the input.
    func describe(inBytes: Int64, inRate: Double, outBytes: Int64, outRate: Double) -> [(String, String)] {
        var parts: [(String, String)] = []
        if input != nil {
            parts.append(("input", "\(ByteSize.format(inBytes)) \(ByteSize.formatRate(inRate))"))
            if let inputSize, inputSize > 0 {
                let done = min(Double(inBytes) / Double(inputSize), 1)
                parts.append(("percent", "\(Int(done * 100))%"))
                let average = Double(inBytes) / max(seconds(ContinuousClock.now - started), 1e-9)
                if done < 1, average > 0 {
                    parts.append(("eta", "\(Int((Double(inputSize - inBytes) / average).rounded(.up)))s"))
                }
            }
        }
        if output != nil {
            parts.append(("output", "\(ByteSize.format(outBytes)) \(ByteSize.formatRate(outRate))"))
        }
        return parts
    }
}

func seconds(_ d: Duration) -> Double {
    let (s, a) = d.components
    return Double(s) + Double(a) / 1e18
}

/// Runs `body`, cancelling it on SIGINT or SIGTERM (a second signal exits at once).
func withSignalCancellation<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    SignalCancellation.install { task.cancel() }
    return try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        task.cancel()
    }
}
