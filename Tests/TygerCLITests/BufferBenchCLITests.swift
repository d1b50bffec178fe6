import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// `tyger buffer bench`: the link to a buffer measured with reads, and the block size and concurrency it gives.
    struct BufferBenchCLITests {
        @Test func aBenchMeasuresEachConcurrencyAndSuggestsATransfer() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let wrote = try await home.shell(#""$TYGER" buffer gen 8M | "$TYGER" buffer write \#(id) -b 1M"#)
                try #require(wrote.exitCode == 0, "\(wrote)")
                let report = try #require(
                    try await home.json(["buffer", "bench", id, "--step", "200ms", "--max-concurrency", "4"])
                        as? [String: Any]
                )
                let steps = try #require(report["steps"] as? [[String: Any]])
                #expect(steps.compactMap { $0["concurrency"] as? Int } == [1, 2, 4], "\(report)")
                #expect(steps.allSatisfy { ($0["bytesPerSecond"] as? Int ?? 0) > 0 }, "\(report)")
                let concurrency = try #require(report["concurrency"] as? Int)
                #expect([1, 2, 4].contains(concurrency))
                let block = try #require(report["blockSize"] as? String)
                #expect(["256K", "512K", "1M", "2M", "4M", "8M", "16M"].contains(block), "\(report)")
                #expect(
                    report["command"] as? String == "tyger buffer write ID --block-size \(block) --dop \(concurrency)"
                )
                #expect((report["roundTripMs"] as? Double ?? -1) >= 0)
            }
        }

        @Test func aBufferWithoutDataCannotBeMeasuredWith() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let bench = try await home.run(["buffer", "bench", id, "--step", "100ms"])
                #expect(bench.exitCode == 1, "\(bench)")
                #expect(bench.stderrText.contains("the buffer holds no data to measure the link with"), "\(bench)")
                let bad = try await home.run(["buffer", "bench", id, "--step", "0s"])
                #expect(bad.exitCode == 64, "\(bad)")
            }
        }
    }
}
