import Testing
import TygerCore
import TygerDataPath
import TygerStorage
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Ways to damage a written buffer, and what the reader must then report.
enum Damage: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case flipByte, deleteMiddleBlob, swapBlobs, changeChain, dropChain, deleteEndMarker, appendByte

    var testDescription: String { rawValue }

    func expected(_ format: BufferFormat) -> TygerCoreError.Code {
        switch self {
        case .flipByte: .checksumMismatch
        case .deleteMiddleBlob, .deleteEndMarker: .missingBlob
        case .swapBlobs, .changeChain, .dropChain: .hashChainMismatch
        // The native format knows the raw length and notices before checksumming; upstream only has the MD5.
        case .appendByte: format == .native ? .corruptBlob : .checksumMismatch
        }
    }
}

@Suite struct IntegrityTests {
    /// Writes a 5-blob buffer (and its end marker) and returns the input.
    private func writeFiveBlobs(_ t: TestStore, format: BufferFormat) async throws -> [UInt8] {
        let input = Payload.random(count: 5 * 16384 - 10, seed: 31)
        let summary = try await writeBuffer(
            input,
            to: t.store,
            options: testWriteOptions(format: format, blockSize: 16384)
        )
        try #require(summary.blobs == 5)
        #expect(mismatch(try await readBuffer(t.store), input) == nil)  // sound before the damage
        return input
    }

    @Test(arguments: StoreKind.allCases, Damage.allCases)
    func damageIsDetected(kind: StoreKind, damage: Damage) async throws {
        for format in [BufferFormat.native, .upstream] {
            try await TestStore.with(kind) { t in
                _ = try await writeFiveBlobs(t, format: format)
                switch damage {
                case .flipByte:
                    var b = try #require(try await t.blob("00/002"))
                    b.bytes[1234] ^= 0x20
                    try t.replace("00/002", with: b)
                case .appendByte:
                    var b = try #require(try await t.blob("00/001"))
                    b.bytes.append(0)
                    try t.replace("00/001", with: b)
                case .deleteMiddleBlob:
                    try t.replace("00/002", with: nil)
                case .deleteEndMarker:
                    try t.replace("00/005", with: nil)
                case .swapBlobs:
                    let one = try #require(try await t.blob("00/001"))
                    let three = try #require(try await t.blob("00/003"))
                    try t.replace("00/001", with: three)
                    try t.replace("00/003", with: one)
                case .changeChain:
                    var b = try #require(try await t.blob("00/002"))
                    b.metadata.hashChain = try #require(try await t.blob("00/001")).metadata.hashChain
                    try t.replace("00/002", with: b)
                case .dropChain:
                    var b = try #require(try await t.blob("00/002"))
                    b.metadata.hashChain = nil
                    try t.replace("00/002", with: b)
                }
                let start = ContinuousClock.now
                let error = await readError(t.store)
                #expect(coreCode(error) == damage.expected(format), "\(format): got \(String(describing: error))")
                // Detected, not waited out: a reader that missed the damage would wait for blobs forever. The bound is
                // wide for a loaded machine.
                #expect(ContinuousClock.now - start < .seconds(30))
                if damage == .dropChain {
                    #expect("\(error!)".contains("cumulative_hash_chain"))
                }
            }
        }
    }

    /// A writer whose sync (or `.bufferend complete`) failed after the end-marker blob writes `.bufferend failed`;
    /// the reader used to stop at the end-marker blob and exit 0 on such a buffer (found by `InjectedFaultTests`).
    @Test(arguments: StoreKind.allCases)
    func aBufferMarkedFailedAfterItsEndMarkerIsFailed(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            _ = try await writeFiveBlobs(t, format: .native)
            let end = try #require(try await t.blob(BufferBlobNames.end))
            try t.replace(BufferBlobNames.end, with: (BufferEndMetadata.encoded(.failed), end.metadata))
            #expect(coreCode(await readError(t.store)) == .bufferFailed)
        }
    }

    @Test func damagedFileTrailerIsAStoreError() async throws {
        try await TestStore.with(.file) { t in
            _ = try await writeFiveBlobs(t, format: .native)
            let path = t.directory + "/00/002"
            #expect(truncate(path, 100) == 0)
            let error = await readError(t.store)
            #expect((error as? BlobStoreError)?.code == .corrupt)
        }
    }

    /// Both formats: the upstream one checks MD5s over runs of fetched blobs side by side, and a damaged blob in a
    /// run must still be reported only when the reader reaches it.
    @Test(arguments: [Damage.deleteMiddleBlob, .flipByte, .changeChain], [1, 8])
    func damageIsReportedAfterTheSoundPrefixIsWritten(damage: Damage, dop: Int) async throws {
        for format in [BufferFormat.native, .upstream] {
            try await TestStore.with(.memory) { t in
                let input = try await writeFiveBlobs(t, format: format)
                switch damage {
                case .deleteMiddleBlob:
                    try t.replace("00/003", with: nil)
                case .flipByte:
                    var b = try #require(try await t.blob("00/003"))
                    b.bytes[0] ^= 1
                    try t.replace("00/003", with: b)
                default:
                    var b = try #require(try await t.blob("00/003"))
                    b.metadata.hashChain = "x"
                    try t.replace("00/003", with: b)
                }
                // A slow sink: the blobs before the damage are still queued when the reader finds it.
                let sink = MemorySink(delayMilliseconds: 30)
                let error = await #expect(throws: TygerCoreError.self) {
                    try await BufferReader.read(from: t.store, to: sink, options: testReadOptions(dop: dop))
                }
                #expect(error?.code == damage.expected(format), "\(format)")
                // Blobs are written strictly in order, and a damaged blob is reported when the reader reaches it: the
                // output is exactly the three sound blobs before it, however far the fetches ran ahead.
                #expect(mismatch(sink.bytes, input.prefix(3 * 16384)) == nil, "\(format)")
            }
        }
    }

    /// The upstream reader hashes runs of up to 16 blobs side by side: a buffer of 40 blobs with one flipped byte
    /// in the first, a middle and the last blob of a run gives exactly the blobs before it, whatever the window.
    @Test(arguments: [0, 17, 38], [2, 32])
    func upstreamRunsReportTheDamagedBlobAndNothingAfterIt(damaged: Int, dop: Int) async throws {
        try await TestStore.with(.memory) { t in
            let blockSize = 4096
            let input = Payload.random(count: 40 * blockSize, seed: 7)
            let options = testWriteOptions(format: .upstream, blockSize: blockSize)
            let summary = try await writeBuffer(input, to: t.store, options: options)
            try #require(summary.blobs == 40)
            let name = BlobPath.name(for: Int64(damaged))
            var b = try #require(try await t.blob(name))
            b.bytes[blockSize - 1] ^= 0x80
            try t.replace(name, with: b)
            let sink = MemorySink(delayMilliseconds: 0)
            let error = await #expect(throws: TygerCoreError.self) {
                try await BufferReader.read(from: t.store, to: sink, options: testReadOptions(dop: dop))
            }
            #expect(error?.code == .checksumMismatch)
            #expect("\(error!)".contains(name))
            #expect(mismatch(sink.bytes, input.prefix(damaged * blockSize)) == nil)
        }
    }
}
