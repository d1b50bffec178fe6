import Testing
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage
import TygerTestSupport

/// One way of writing a buffer.
struct Encoding: Sendable, CustomTestStringConvertible {
    var format: BufferFormat
    var compression: CompressionLevel

    static let all = [
        Encoding(format: .native, compression: .none), Encoding(format: .native, compression: .fast),
        Encoding(format: .native, compression: .best), Encoding(format: .upstream, compression: .none),
    ]
    var testDescription: String { "\(format)/\(compression)" }
}

@Suite struct RoundTripTests {
    static let blockSize = 64 << 10
    static let sizes = [0, 1, 64 << 10 - 1, 64 << 10, 64 << 10 + 1, 300_000]

    @Test(arguments: StoreKind.allCases, Encoding.all)
    func writeThenReadGivesTheInputBack(kind: StoreKind, encoding: Encoding) async throws {
        for (i, size) in Self.sizes.enumerated() {
            try await TestStore.with(kind) { t in
                let input =
                    i % 2 == 0
                    ? Payload.compressible(count: size, seed: UInt64(size))
                    : Payload.random(count: size, seed: UInt64(size))
                let options = testWriteOptions(
                    format: encoding.format,
                    compression: encoding.compression,
                    dop: 1 + i % 4
                )
                let summary = try await writeBuffer(input, to: t.store, options: options)
                let blobs = (size + Self.blockSize - 1) / Self.blockSize
                #expect(summary.bytes == Int64(size))
                #expect(summary.blobs == Int64(blobs))
                let output = try await readBuffer(t.store, options: testReadOptions(dop: 1 + i % 3))
                #expect(mismatch(output, input) == nil, "size \(size)")
                // Blob layout: full blocks, then the empty end marker, then nothing.
                for n in 0..<blobs {
                    let stored = try #require(try await t.store.get(BlobPath.name(for: Int64(n))))
                    let rawLength = stored.metadata.properties["raw_length"].flatMap { Int($0) } ?? stored.bytes.count
                    #expect(rawLength == min(Self.blockSize, size - n * Self.blockSize))
                }
                let end = try #require(try await t.store.get(BlobPath.name(for: Int64(blobs))))
                #expect(end.bytes.isEmpty)
                #expect(try await t.store.get(BlobPath.name(for: Int64(blobs + 1))) == nil)
                let bufferEnd = try #require(try await t.store.get(BufferBlobNames.end))
                #expect(String(decoding: Array(bufferEnd.bytes), as: UTF8.self) == #"{"status":"complete"}"#)
                #expect(await writerGone(t.store))
            }
        }
    }

    @Test(arguments: [1, 2, 16], [1, 2, 32])
    func manyBlobsWithVariousParallelism(writeDop: Int, readDop: Int) async throws {
        try await TestStore.with(.file) { t in
            let input = Payload.random(count: 40 * 4096 + 17, seed: 7)
            try await writeBuffer(input, to: t.store, options: testWriteOptions(blockSize: 4096, dop: writeDop))
            var read = testReadOptions(dop: readDop)
            read.expectedBlobSize = 4096
            #expect(mismatch(try await readBuffer(t.store, options: read), input) == nil)
        }
    }

    @Test func bytesCountersAdvance() async throws {
        try await TestStore.with(.memory) { t in
            let input = Payload.random(count: 200_000, seed: 1)
            let stored = LockedCounter()
            _ = try await BufferWriter.write(
                from: ArraySource(input),
                to: t.store,
                options: testWriteOptions(),
                bytesStored: stored
            )
            #expect(stored.value == 200_000)
            let written = LockedCounter()
            let sink = MemorySink()
            let summary = try await BufferReader.read(
                from: t.store,
                to: sink,
                options: testReadOptions(),
                bytesWritten: written
            )
            #expect(written.value == 200_000)
            #expect(summary.blobs == 4)
        }
    }

    @Test func compressionShrinksStoredBytesButNotOutput() async throws {
        try await TestStore.with(.file) { t in
            let input = Payload.compressible(count: 500_000, seed: 3)
            let summary = try await writeBuffer(input, to: t.store, options: testWriteOptions(compression: .fast))
            #expect(summary.bytes == 500_000)
            #expect(summary.storedBytes < 250_000)
            let start = try #require(try await t.blob(BufferBlobNames.start))
            #expect(
                try BufferStartMetadata.decode(start.bytes)
                    == BufferStartMetadata(format: .native, codec: "deflate", level: "fast", blockSize: 64 << 10)
            )
            for n in 0..<Int64(summary.blobs) {
                #expect(try await t.blob(BlobPath.name(for: n))?.metadata.properties["encoding"] == "deflate")
            }
            #expect(mismatch(try await readBuffer(t.store), input) == nil)
        }
    }

    @Test(arguments: [CompressionLevel.fast, .best])
    func incompressibleBlocksAreStoredRaw(compression: CompressionLevel) async throws {
        try await TestStore.with(.file) { t in
            let input = Payload.random(count: 200_000, seed: 4)
            let summary = try await writeBuffer(input, to: t.store, options: testWriteOptions(compression: compression))
            #expect(summary.storedBytes == summary.bytes)
            for n in 0..<Int64(summary.blobs) {
                let blob = try #require(try await t.blob(BlobPath.name(for: n)))
                #expect(blob.metadata.properties["encoding"] == "raw")
            }
            #expect(mismatch(try await readBuffer(t.store), input) == nil)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func readerFollowsALiveWriterThroughAPipe() async throws {
        try await TestStore.with(.file) { t in
            let input = Payload.random(count: 400_000, seed: 8)
            let (r, w) = try makePipe()
            defer { FileDescriptorOps.close(r) }
            // The reader starts first and waits for `.bufferstart`.
            async let output = readBuffer(t.store)
            startThread {
                var offset = 0
                while offset < input.count {
                    let n = min(30_000, input.count - offset)
                    try? Array(input[offset..<(offset + n)]).withUnsafeBytes { try FileDescriptorOps.writeAll(w, $0) }
                    offset += n
                    usleepMilliseconds(15)
                }
                FileDescriptorOps.close(w)
            }
            var options = testWriteOptions(blockSize: 64 << 10)
            options.flushInterval = .milliseconds(50)
            let summary = try await BufferWriter.write(from: DescriptorSource(fd: r), to: t.store, options: options)
            #expect(summary.bytes == Int64(input.count))
            #expect(mismatch(try await output, input) == nil)
        }
    }
}
