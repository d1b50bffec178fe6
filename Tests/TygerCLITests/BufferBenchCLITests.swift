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

        /// Through a relay the test owns that holds every byte 25 ms each way (no `netem` here), the bench's round
        /// trip is the link's, at least 50 ms.
        @Test func theRoundTripOfADelayedLinkIsMeasured() async throws {
            try await withTemporaryDirectory { dir in
                let held = try LoopbackSocket(listening: false)
                let port = held.port
                held.close()
                let relay = try TCPRelay(to: port, delay: .milliseconds(25))
                defer { relay.stop() }
                let server = try await ServerProcess.start(
                    dataDirectory: dir + "/data",
                    arguments: [
                        "--tcp", "127.0.0.1:\(port)", "--no-unix-socket", "--advertise-url",
                        "http://127.0.0.1:\(relay.port)",
                    ]
                )
                defer { Task { _ = try? await server.stop() } }
                let token = try await TygerServerBinary.createToken(dataDirectory: dir + "/data")
                try await withCLIHome { home in
                    let login = try await home.run(["login", "http://127.0.0.1:\(relay.port)", "--token", token])
                    try #require(login.exitCode == 0, "\(login)")
                    let id = try await home.output(["buffer", "create"])
                    let wrote = try await home.shell(#""$TYGER" buffer gen 4M | "$TYGER" buffer write \#(id) -b 1M"#)
                    try #require(wrote.exitCode == 0, "\(wrote)")
                    let report = try #require(
                        try await home.json(["buffer", "bench", id, "--step", "300ms", "--max-concurrency", "2"])
                            as? [String: Any]
                    )
                    let rtt = try #require(report["roundTripMs"] as? Double, "\(report)")
                    #expect(rtt >= 50, "\(report)")
                }
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
