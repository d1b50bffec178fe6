import Testing
import TygerCore
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(3))) struct LiveBufferCLITests {
    @Test func aKilledWriterMakesTheReaderFailPromptlyInsteadOfHanging() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = dir + "/buffer"
            let writer = try TygerBinary.start(
                ["buffer", "write", "file://" + buffer, "--block-size", "16K", "--flush-interval", "100ms"],
                input: .pipe
            )
            // 40 KiB: two full blocks and a partial one that the flush timer sends; the pipe stays open.
            let input = Payload.random(count: 40 << 10, seed: 9)
            try writer.writeStdin(input)
            let stored = await eventually(timeout: .seconds(60)) { TestFiles.exists(buffer + "/00/002") }
            #expect(stored, "the writer never stored its third blob")
            #expect(!writer.hasExited)
            writer.signal(SIGKILL)
            let killed = try await writer.wait(timeout: .seconds(10))
            #expect(killed.signal == SIGKILL)
            #expect(!TestFiles.exists(buffer + "/.bufferend"))

            let read = try await TygerBinary.run(["buffer", "read", "file://" + buffer], timeout: .seconds(20))
            #expect(read.elapsed < .seconds(5), "the reader took \(read.elapsed)")
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("writer stopped without finishing"), "\(read)")
            // What the writer did store comes out first, intact.
            #expect(mismatch(read.stdout, input) == nil)
            writer.closeStdin()
        }
    }

    @Test func aReaderWaitingOnALiveWriterFailsWhenTheWriterIsKilled() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = dir + "/buffer"
            let writer = try TygerBinary.start(
                ["buffer", "write", "file://" + buffer, "--block-size", "16K", "--flush-interval", "50ms"],
                input: .pipe
            )
            try writer.writeStdin(Array("some data\n".utf8))
            #expect(await eventually(timeout: .seconds(60)) { TestFiles.exists(buffer + "/00/000") })
            let readerStarted = ContinuousClock.now
            let reader = try TygerBinary.start(["buffer", "read", "file://" + buffer])
            try await Task.sleep(for: .milliseconds(500))
            #expect(!reader.hasExited, "the reader must keep following a live writer")
            let killedAt = ContinuousClock.now
            writer.signal(SIGKILL)
            let read = try await reader.wait(timeout: .seconds(10))
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("writer stopped"), "\(read)")
            #expect(
                read.elapsed - (killedAt - readerStarted) < .seconds(5),
                "the reader outlived the writer by too long"
            )
            #expect(read.stdoutText == "some data\n")
            _ = try await writer.wait(timeout: .seconds(10))
        }
    }

    @Test func aFailedBufferIsReportedByTheReader() async throws {
        try await withTemporaryDirectory { dir in
            try TestFiles.makeDirectory(dir + "/b")
            try FileBlobFile.write(
                FileBlobFile.Parts(
                    data: Array(#"{"version":"0.3.0"}"#.utf8),
                    metadataJSON: Array(#"{"content-md5":"jRl6v+tdX5RbfseHVtVXDw=="}"#.utf8)
                ),
                to: dir + "/b/.bufferstart"
            )
            try FileBlobFile.write(
                FileBlobFile.Parts(data: Array(#"{"status":"failed"}"#.utf8), metadataJSON: Array("{}".utf8)),
                to: dir + "/b/.bufferend"
            )
            let read = try await TygerBinary.run(["buffer", "read", "file://\(dir)/b"], timeout: .seconds(20))
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("the buffer is in a permanently failed state"), "\(read)")
        }
    }

    @Test func aWriterWhoseInputFailsLeavesAFailedBuffer() async throws {
        try await withTemporaryDirectory { dir in
            // A directory as input: open succeeds, read fails with EISDIR after the buffer was started.
            try TestFiles.makeDirectory(dir + "/notafile")
            let write = try await TygerBinary.run(["buffer", "write", "file://\(dir)/b", "-i", dir + "/notafile"])
            #expect(write.exitCode == 1, "\(write)")
            #expect(try FileBlobFile.read(dir + "/b/.bufferend").data == Array(#"{"status":"failed"}"#.utf8))
            let read = try await TygerBinary.run(["buffer", "read", "file://\(dir)/b"], timeout: .seconds(20))
            #expect(read.exitCode == 1)
            #expect(read.stderrText.contains("permanently failed"), "\(read)")
        }
    }

    @Test func concurrentWriteFromAFIFOAndReadGiveTheInput() async throws {
        try await withTemporaryFIFO { fifo, dir in
            let buffer = dir + "/buffer"
            try TestFiles.makeDirectory(buffer)  // the reader needs the buffer to exist; the writer fills it
            let writer = try TygerBinary.start(
                [
                    "buffer", "write", "file://" + buffer, "-i", fifo, "--block-size", "64K", "--flush-interval",
                    "50ms", "--dop", "4",
                ])
            let reader = try TygerBinary.start(["buffer", "read", "file://" + buffer, "--dop", "4"])
            let input = Payload.random(count: 1_500_000, seed: 10)
            let fd = try await TestFiles.openForWriting(fifo)
            try await onThread {
                defer { TestFiles.close(fd) }
                var offset = 0
                var rng = SeededGenerator(seed: 3)
                while offset < input.count {
                    let n = min(Int(rng.next() % 100_000) + 1, input.count - offset)
                    try TestFiles.writeAll(fd, Array(input[offset..<(offset + n)]))
                    offset += n
                    if rng.next() % 4 == 0 { usleepMilliseconds(10) }
                }
            }
            let written = try await writer.wait(timeout: .seconds(30))
            #expect(written.exitCode == 0, "\(written)")
            let read = try await reader.wait(timeout: .seconds(30))
            #expect(read.exitCode == 0, "\(read)")
            #expect(read.stdout.count == input.count)
            #expect(sha256Hex(read.stdout) == sha256Hex(input))
        }
    }

    @Test func trickleThroughTheCLIReachesTheReaderWithinTheFlushInterval() async throws {
        try await withTemporaryDirectory { dir in
            let buffer = dir + "/buffer"
            try TestFiles.makeDirectory(buffer)
            let writer = try TygerBinary.start(
                ["buffer", "write", "file://" + buffer, "--flush-interval", "200ms", "--block-size", "64K"],
                input: .pipe
            )
            let reader = try TygerBinary.start(["buffer", "read", "file://" + buffer, "-o", dir + "/out"])
            // Send a line every 600 ms and watch the reader's output file, both on threads of their own so the
            // times measure the pipeline and not the test's scheduling.
            let sender = spawnThread { () -> [ContinuousClock.Instant] in
                var sent: [ContinuousClock.Instant] = []
                for i in 0..<3 {
                    usleepMilliseconds(600)
                    sent.append(ContinuousClock.now)
                    try writer.writeStdin(Array("line \(i)\n".utf8))
                }
                return sent
            }
            let watcher = spawnThread { () -> [ContinuousClock.Instant] in
                var seen: [ContinuousClock.Instant] = []
                let deadline = ContinuousClock.now + .seconds(20)
                while seen.count < 3, ContinuousClock.now < deadline {
                    let lines = ((try? TestFiles.read(dir + "/out")) ?? []).filter { $0 == 0x0A }.count
                    while seen.count < lines { seen.append(ContinuousClock.now) }
                    usleepMilliseconds(5)
                }
                return seen
            }
            let sent = try await sender.value
            let seen = try await watcher.value
            try #require(seen.count == 3, "only \(seen.count) lines reached the reader")
            for i in 0..<3 {
                // Flush interval (200 ms) + the reader's wait + two processes' scheduling: far below the
                // 4 MiB-block wait the interval replaces.
                #expect(seen[i] - sent[i] < .seconds(2), "line \(i) took \(seen[i] - sent[i])")
            }
            // The interval runs from a block's first byte, so lines wait for it: a writer that sent every line at once
            // would show none that did. (Every line is not required to: on a loaded machine one line was seen 64 ms,
            // and another 108 ms, after the test's clock said it was sent, in two full runs out of many.)
            let waits = (0..<3).map { i in seen[i] - sent[seen.firstIndex(of: seen[i])!] }
            #expect(waits.contains { $0 >= .milliseconds(150) }, "no line waited for the flush interval: \(waits)")
            writer.closeStdin()
            #expect(try await writer.wait(timeout: .seconds(20)).exitCode == 0)
            #expect(try await reader.wait(timeout: .seconds(20)).exitCode == 0)
            #expect(String(decoding: try TestFiles.read(dir + "/out"), as: UTF8.self) == "line 0\nline 1\nline 2\n")
        }
    }
}
