import ArgumentParser
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage

extension BufferCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the link to a buffer and print the block size and concurrency a transfer would use.",
            discussion: """
                TARGET is a buffer ID or access URL of a buffer that holds data (buffers are write-once, so the \\
                link is measured with reads of its blobs; nothing is written). It measures the round trip (HEAD \\
                requests), then the throughput with 1, 2, 4, … requests in flight (--step each), and prints JSON: \\
                the measurements, the concurrency (the fewest requests in flight that reach 90 % of the best \\
                throughput) and the block size (one request should take about 2 s at the rate each gets, and at \\
                least 20 round trips; between 256 KiB and 16 MiB), with a buffer write command line using them.
                """
        )

        @Argument(help: "The buffer's ID or access URL (a buffer with data).")
        var target: String

        @Option(help: "How long each concurrency is measured (e.g. 2s).")
        var step: String = "2s"

        @Option(help: "The most requests in flight to try.")
        var maxConcurrency: Int = 16

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            do {
                guard try DurationParser.parse(step) > .zero else { throw ValidationError("--step must be positive") }
            } catch let e as TygerCoreError { throw ValidationError("--step: \(e.message)") }
            guard (1...256).contains(maxConcurrency) else {
                throw ValidationError("--max-concurrency must be between 1 and 256, got \(maxConcurrency)")
            }
        }

        func run() async throws {
            let step = try DurationParser.parse(step)
            let maxConcurrency = maxConcurrency
            let report = try await withSignalCancellation {
                // The network, never the embedded server's folder: that is what a transfer from elsewhere crosses.
                try await BufferLocation.withResolved(target, write: false, allowFastPath: false) { resolved in
                    if resolved.isEphemeral {
                        throw CommandFailure("an ephemeral buffer cannot be measured with: its bytes are not stored")
                    }
                    return try await Self.measure(
                        (resolved.store as? PacedBlobStore)?.base ?? resolved.store,
                        step: step,
                        maxConcurrency: maxConcurrency
                    )
                }
            }
            try Console.json(report)
        }

        struct Report: Encodable {
            struct Step: Encodable {
                var concurrency: Int
                var bytesPerSecond: Int64
                var throughput: String
            }
            var roundTripMs: Double
            var steps: [Step]
            var concurrency: Int
            var blockSize: String
            var command: String
        }

        static func measure(_ store: any BlobStore, step: Duration, maxConcurrency: Int) async throws -> Report {
            guard let start = try await store.get(BufferBlobNames.start) else {
                throw CommandFailure("the buffer holds no data to measure the link with (no .bufferstart yet)")
            }
            let prefix = try await StoredPrefix.scan(
                store,
                start: try BufferStartMetadata.decode(Array(start.bytes)),
                upTo: 256 << 20
            )
            let names = (0..<prefix.nextBlob).map { BlobPath.name(for: $0) }
            guard !names.isEmpty else {
                throw CommandFailure(
                    "the buffer holds no data to measure the link with: write some first "
                        + "(tyger buffer gen 256M | tyger buffer write ID)"
                )
            }
            // The round trip: the fastest of a few HEADs (the slower ones met other traffic).
            var rtt = Duration.seconds(3600)
            for _ in 0..<5 {
                let started = ContinuousClock.now
                _ = try await store.head(BufferBlobNames.start)
                rtt = min(rtt, ContinuousClock.now - started)
            }
            var steps: [Report.Step] = []
            var concurrency = 1
            while concurrency <= maxConcurrency {
                let rate = try await throughput(store, names: names, concurrency: concurrency, for: step)
                steps.append(
                    Report.Step(
                        concurrency: concurrency,
                        bytesPerSecond: Int64(rate),
                        throughput: ByteSize.formatRate(rate)
                    )
                )
                if concurrency == maxConcurrency { break }
                concurrency = min(maxConcurrency, concurrency * 2)
            }
            let best = steps.map(\.bytesPerSecond).max() ?? 0
            let chosen = steps.first { Double($0.bytesPerSecond) >= 0.9 * Double(best) } ?? steps[0]
            let perRequest = Double(chosen.bytesPerSecond) / Double(chosen.concurrency)
            let rttSeconds = seconds(rtt)
            let block = blockSize(perRequestRate: perRequest, roundTrip: rttSeconds)
            let blockText = block >= 1 << 20 ? "\(block >> 20)M" : "\(block >> 10)K"
            return Report(
                roundTripMs: (rttSeconds * 1e5).rounded() / 100,
                steps: steps,
                concurrency: chosen.concurrency,
                blockSize: blockText,
                command: "tyger buffer write ID --block-size \(blockText) --dop \(chosen.concurrency)"
            )
        }

        /// About 2 s per request at the rate each gets, and at least 20 round trips; a power of two between 256 KiB
        /// and 16 MiB.
        static func blockSize(perRequestRate: Double, roundTrip: Double) -> Int {
            let wanted = perRequestRate * max(2, 20 * roundTrip)
            var size = 256 << 10
            while size < 16 << 20, Double(size * 2) <= wanted { size *= 2 }
            return size
        }

        /// Bytes per second fetched by `concurrency` tasks that get the blobs round and round for `duration`.
        private static func throughput(
            _ store: any BlobStore,
            names: [String],
            concurrency: Int,
            for duration: Duration
        ) async throws -> Double {
            let moved = LockedCounter()
            let next = LockedCounter()
            let started = ContinuousClock.now
            let deadline = started + duration
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while ContinuousClock.now < deadline {
                            let n = Int(next.add(1) - 1) % names.count
                            if let blob = try await store.get(names[n]) { moved.add(Int64(blob.bytes.count)) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            return Double(moved.value) / max(seconds(ContinuousClock.now - started), 1e-6)
        }
    }
}
