import Testing
import TygerCore
import TygerDataPath
import TygerStorage
import TygerTestSupport

/// Every kind of on-disk damage, at seeded random places, against the reader's verification: flipped bytes (data
/// and metadata), truncation, missing blobs, swapped blobs, a blob from another buffer, garbage markers and an edited
/// hash chain, in both formats. The reader must fail with an error within the bound, or (when the damage changed
/// nothing the format promises to check) return exactly the input; never other data with success.
/// `IntegrityTests` checks the exact error of each damage; this suite checks the invariant over many placements.
@Suite(.timeLimit(.minutes(10))) struct CorruptionMatrixTests {
    enum Kind: String, CaseIterable, Sendable {
        case flipDataByte, flipMetadataByte, truncate, extend, delete, swap, foreignBlob, garbage, emptyBlob, editChain
        case dropMetadata
    }

    /// Trials per store: a hundredth of the fuzz count (100 in CI).
    static var trials: Int { max(10, FaultSettings.fuzzIterations / 100) }

    @Test(arguments: StoreKind.allCases)
    func randomDamageIsDetected(kind: StoreKind) async throws {
        let base = FaultSettings.seed &* 1_000_003 &+ 300
        var detected = 0
        var harmless = 0
        for i in 0..<Self.trials {
            let seed = base &+ UInt64(i)
            var g = FuzzGenerator(seed: seed)
            let format: BufferFormat = g.oneIn(2) ? .native : .upstream
            let input = Payload.random(count: 1 + g.below(6 * 8192), seed: seed)
            let foreign = Payload.random(count: 8192, seed: seed ^ 0xFFFF)
            let outcome = try await TestStore.with(kind) { t -> [UInt8]?? in
                let options = testWriteOptions(format: format, blockSize: 8192, dop: 2)
                try await writeBuffer(input, to: t.store, options: options)
                let names = try await storedNames(t)
                let damage = g.pick(Kind.allCases)
                let name = g.pick(names)
                var blob = try #require(try await t.blob(name))
                switch damage {
                case .flipDataByte:
                    if blob.bytes.isEmpty {
                        blob.bytes = [1]
                    } else {
                        blob.bytes[g.below(blob.bytes.count)] ^= UInt8(1 + g.below(255))
                    }
                case .flipMetadataByte:
                    if let key = blob.metadata.properties.keys.sorted().randomElement(using: &g.rng),
                        var value = blob.metadata.properties[key].map({ Array($0.utf8) }), !value.isEmpty
                    {
                        value[g.below(value.count)] ^= 0x01
                        blob.metadata.properties[key] = String(decoding: value, as: UTF8.self)
                    } else if let md5 = blob.metadata.contentMD5 {
                        blob.metadata.contentMD5 = String(md5.reversed())
                    }
                case .truncate: blob.bytes = Array(blob.bytes.prefix(g.below(max(1, blob.bytes.count))))
                case .extend: blob.bytes += Payload.random(count: 1 + g.below(100), seed: seed)
                case .delete:
                    try t.replace(name, with: nil)
                    return try await readWithin(t.store)
                case .swap:
                    let other = g.pick(names)
                    let otherBlob = try #require(try await t.blob(other))
                    try t.replace(other, with: blob)
                    blob = otherBlob
                case .foreignBlob:
                    let stranger = try await TestStore.with(.memory) { s -> (bytes: [UInt8], metadata: BlobMetadata)? in
                        try await writeBuffer(foreign, to: s.store, options: options)
                        if let same = try await s.blob(name) { return same }
                        return try await s.blob(BlobPath.name(for: 0))
                    }
                    blob = try #require(stranger)
                case .garbage:
                    blob.bytes = Payload.random(count: g.below(300), seed: seed)
                    blob.metadata = BlobMetadata(properties: ["x": g.oddString().filter(\.isASCII)])
                case .emptyBlob: blob.bytes = []
                case .editChain: blob.metadata.hashChain = g.pick(["", "x", "AAAA", String(repeating: "A", count: 44)])
                case .dropMetadata: blob.metadata = BlobMetadata()
                }
                try t.replace(name, with: blob)
                return try await readWithin(t.store)
            }
            let read = try #require(outcome, "seed \(seed): the reader did not end within the bound")
            if let bytes = read {
                #expect(mismatch(bytes, input) == nil, "seed \(seed): damaged buffer read back as other data")
                harmless += 1
            } else {
                detected += 1
            }
        }
        FaultSettings.report(
            "corruption (\(kind)): \(Self.trials) trials, \(detected) detected, \(harmless) harmless, 0 data lost"
        )
    }

    private func storedNames(_ t: TestStore) async throws -> [String] {
        var names = [BufferBlobNames.start, BufferBlobNames.end]
        var n: Int64 = 0
        while try await t.store.head(BlobPath.name(for: n)) != nil {
            names.append(BlobPath.name(for: n))
            n += 1
        }
        return names
    }

    /// The bytes read, `nil` when the read failed; `.none` (outer) when it did not end within the bound.
    private func readWithin(_ store: any BlobStore) async throws -> [UInt8]?? {
        try await withinTime(.seconds(20)) { () -> [UInt8]? in
            let sink = MemorySink()
            do {
                _ = try await BufferReader.read(from: store, to: sink, options: testReadOptions())
                return sink.bytes
            } catch { return nil }
        }
    }
}
