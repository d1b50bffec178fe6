import Testing
import TygerCore
import TygerTestSupport

func sha256Hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { Checksums.sha256Hex($0) } }

@Suite struct GenCommandTests {
    @Test func thirtyTwoMiBToStdoutMatchesTheUpstreamVector() async throws {
        let result = try await TygerBinary.run(["buffer", "gen", "32M"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout.count == 32 << 20)
        #expect(sha256Hex(result.stdout) == "b997630f9de63d635b4f686f6e4d9827d253bcf3e0ee204186095486ff64793c")
    }

    @Test func threeMiBToAFileMatchesTheUpstreamVector() async throws {
        try await withTemporaryDirectory { dir in
            let result = try await TygerBinary.run(["buffer", "gen", "3MiB", "-o", dir + "/gen.bin"])
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.stdout.isEmpty)
            let bytes = try TestFiles.read(dir + "/gen.bin")
            #expect(bytes.count == 3 << 20)
            #expect(sha256Hex(bytes) == "09d7daed99c15bcee48dfa269c7597a1036a371c90100dda6f4fdcfe7ab79385")
        }
    }

    @Test(arguments: [("0", 0), ("1", 1), ("1.5K", 1536), ("4097", 4097), ("5M", 5 << 20)])
    func sizes(text: String, count: Int) async throws {
        let result = try await TygerBinary.run(["buffer", "gen", text])
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout.count == count)
        #expect(mismatch(result.stdout, Payload.generated(count: count)) == nil)
    }

    @Test(.timeLimit(.minutes(3)))
    func genIntoAClosedPipeExitsZero() async throws {
        try await withTemporaryDirectory { dir in
            let result = try await runShell(
                """
                "$TYGER" buffer gen 100M | head -c 10 > "\(dir)/out"
                echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" > "\(dir)/status"
                """,
                timeout: .seconds(30)
            )
            #expect(result.exitCode == 0, "\(result)")
            #expect(String(decoding: try TestFiles.read(dir + "/status"), as: UTF8.self) == "0 0\n")
            #expect(try TestFiles.read(dir + "/out") == Payload.generated(count: 10))
        }
    }
}
