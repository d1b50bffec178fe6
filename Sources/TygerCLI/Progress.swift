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
