import Testing
import TygerCore
import TygerTestSupport

/// One `gen | write` then `read` configuration.
struct CLICase: Sendable, CustomTestStringConvertible {
    var format: String
    var compress: String?
    var blockSize: String
    var writeDop: Int
    var readDop: Int
    /// Feed the writer through a pipe (stdin) rather than `-i file`.
    var viaPipe: Bool

    var writeOptions: [String] {
        var o = ["--format", format, "--block-size", blockSize, "--dop", String(writeDop)]
        if let compress { o += ["--compress", compress] }
        return o
    }

    var testDescription: String {
        "\(format) \(compress ?? "-") \(blockSize) w\(writeDop) r\(readDop) \(viaPipe ? "pipe" : "file")"
    }
}

@Suite(.timeLimit(.minutes(3))) struct BufferRoundTripCLITests {
    static let cases: [CLICase] = [
        CLICase(format: "native", compress: nil, blockSize: "64K", writeDop: 1, readDop: 1, viaPipe: true),
        CLICase(format: "native", compress: nil, blockSize: "16K", writeDop: 16, readDop: 32, viaPipe: false),
        CLICase(format: "native", compress: "fast", blockSize: "64K", writeDop: 4, readDop: 2, viaPipe: true),
        CLICase(format: "native", compress: "fast", blockSize: "1M", writeDop: 2, readDop: 8, viaPipe: false),
        CLICase(format: "native", compress: "best", blockSize: "256K", writeDop: 3, readDop: 4, viaPipe: true),
        CLICase(format: "0.3.0", compress: nil, blockSize: "64K", writeDop: 8, readDop: 3, viaPipe: true),
        CLICase(format: "0.3.0", compress: nil, blockSize: "32K", writeDop: 1, readDop: 16, viaPipe: false),
        CLICase(format: "upstream", compress: nil, blockSize: "1K", writeDop: 4, readDop: 4, viaPipe: true),
    ]

    @Test(arguments: cases)
    func genWriteReadRoundTrip(c: CLICase) async throws {
        try await withTemporaryDirectory { dir in
            let size = c.blockSize == "1K" ? 200_000 : (1 << 20) + 12345
            let buffer = "file://\(dir)/buffer"
            let write: ProcessResult
            if c.viaPipe {
                write = try await runShell(
                    #""$TYGER" buffer gen \#(size) | "$TYGER" buffer write '\#(buffer)' \#(c.writeOptions.joined(separator: " "))"#
                )
            } else {
                let gen = try await TygerBinary.run(["buffer", "gen", String(size), "-o", dir + "/input"])
                #expect(gen.exitCode == 0)
                write = try await TygerBinary.run(["buffer", "write", buffer, "-i", dir + "/input"] + c.writeOptions)
            }
            #expect(write.exitCode == 0, "\(write)")
            #expect(write.stderrText.contains("Transfer complete"))
            #expect(write.stdout.isEmpty)

            let read = try await TygerBinary.run(["buffer", "read", buffer, "--dop", String(c.readDop)])
            #expect(read.exitCode == 0, "\(read)")
            #expect(read.stdout.count == size)
            #expect(mismatch(read.stdout, Payload.generated(count: size)) == nil)

            // Also through `-o`, and a second, concurrent-safe read of the same complete buffer.
            let again = try await TygerBinary.run(["buffer", "read", buffer, "-o", dir + "/output"])
            #expect(again.exitCode == 0, "\(again)")
            #expect(sha256Hex(try TestFiles.read(dir + "/output")) == sha256Hex(Payload.generated(count: size)))
        }
    }

    @Test func randomBytesThroughStdin() async throws {
        try await withTemporaryDirectory { dir in
            let input = Payload.random(count: 700_000, seed: 17)
            let buffer = "file://\(dir)/buffer"
            let write = try await TygerBinary.run(
                ["buffer", "write", buffer, "--block-size", "128K", "--compress", "fast"],
                input: .bytes(input)
            )
            #expect(write.exitCode == 0, "\(write)")
            let read = try await TygerBinary.run(["buffer", "read", buffer])
            #expect(read.exitCode == 0, "\(read)")
            #expect(mismatch(read.stdout, input) == nil)
        }
    }

    @Test func emptyInput() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = "file://\(dir)/buffer"
            let write = try await TygerBinary.run(["buffer", "write", buffer], input: .bytes([]))
            #expect(write.exitCode == 0, "\(write)")
            let read = try await TygerBinary.run(["buffer", "read", buffer])
            #expect(read.exitCode == 0, "\(read)")
            #expect(read.stdout.isEmpty)
        }
    }

    @Test func readIntoAClosedPipeExitsZeroWithExactlyTheFirstBytes() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = "file://\(dir)/buffer"
            let write = try await runShell(
                #""$TYGER" buffer gen 8M | "$TYGER" buffer write '\#(buffer)' --block-size 256K"#
            )
            #expect(write.exitCode == 0, "\(write)")
            let result = try await runShell(
                """
                "$TYGER" buffer read '\(buffer)' | head -c 10 > "\(dir)/out"
                echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" > "\(dir)/status"
                """,
                timeout: .seconds(30)
            )
            #expect(result.exitCode == 0, "\(result)")
            #expect(String(decoding: try TestFiles.read(dir + "/status"), as: UTF8.self) == "0 0\n", "\(result)")
            #expect(try TestFiles.read(dir + "/out") == Payload.generated(count: 10))
        }
    }

    @Test func aSecondWriteIsRefusedAndTheBufferSurvives() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = "file://\(dir)/buffer"
            let first = try await TygerBinary.run(["buffer", "write", buffer], input: .bytes(Array("first\n".utf8)))
            #expect(first.exitCode == 0, "\(first)")
            let second = try await TygerBinary.run(["buffer", "write", buffer], input: .bytes(Array("second\n".utf8)))
            #expect(second.exitCode == 1, "\(second)")
            #expect(second.stderrText.contains("buffer cannot be overwritten"), "\(second)")
            let read = try await TygerBinary.run(["buffer", "read", buffer])
            #expect(read.stdoutText == "first\n")
        }
    }

    @Test func accessURLInAFile() async throws {
        try await withTemporaryDirectory { dir in
            try TestFiles.write(Array("  file://\(dir)/buffer\n".utf8), to: dir + "/url.txt")
            let write = try await TygerBinary.run(
                ["buffer", "write", dir + "/url.txt"],
                input: .bytes(Array("via url file".utf8))
            )
            #expect(write.exitCode == 0, "\(write)")
            #expect(TestFiles.exists(dir + "/buffer/.bufferend"))
            let read = try await TygerBinary.run(["buffer", "read", dir + "/url.txt"])
            #expect(read.stdoutText == "via url file")
            try TestFiles.write(Array("not a url".utf8), to: dir + "/bad.txt")
            let bad = try await TygerBinary.run(["buffer", "read", dir + "/bad.txt"])
            #expect(bad.exitCode == 1)
            #expect(bad.stderrText.contains("does not hold an access URL"), "\(bad)")
        }
    }

    @Test func upstreamFormatWrittenByTheCLIIsCompatible() async throws {
        try await withTemporaryDirectory { dir in
            let input = Payload.compressible(count: 3 * 4096 + 1, seed: 2)
            let write = try await TygerBinary.run(
                ["buffer", "write", "file://\(dir)/b", "--format", "0.3.0", "--block-size", "4K"],
                input: .bytes(input)
            )
            #expect(write.exitCode == 0, "\(write)")
            let b = dir + "/b"
            let start = try FileBlobFile.read(b + "/.bufferstart")
            #expect(start.data == Array(#"{"version":"0.3.0"}"#.utf8))
            #expect(try start.metadata() == ["content-md5": "jRl6v+tdX5RbfseHVtVXDw=="])
            var chain = Reference.chainInitialValue
            var data: [UInt8] = []
            for n in Int64(0)..<4 {
                let blob = try FileBlobFile.read(b + "/" + BlobPath.name(for: n))
                let md5 = Reference.md5Base64(blob.data)
                chain = Reference.chainLink(previous: chain, checksum: md5)
                #expect(try blob.metadata() == ["content-md5": md5, "meta:cumulative_hash_chain": chain], "blob \(n)")
                data += blob.data
            }
            #expect(mismatch(data, input) == nil)
            let terminal = try FileBlobFile.read(b + "/00/004")
            #expect(terminal.data.isEmpty)
            #expect(try terminal.metadata()["content-md5"] == "1B2M2Y8AsgTpgAmY7PhCfg==")
            #expect(
                try terminal.metadata()["meta:cumulative_hash_chain"]
                    == Reference.chainLink(previous: chain, checksum: "1B2M2Y8AsgTpgAmY7PhCfg==")
            )
            #expect(!TestFiles.exists(b + "/00/005"))
            #expect(try FileBlobFile.read(b + "/.bufferend").data == Array(#"{"status":"complete"}"#.utf8))
        }
    }
}
