import Testing
import TygerClient
import TygerCore
import TygerStorage
import TygerTestSupport

/// The stores, tested against the same contract: in memory, local files, and an S3-compatible store (SeaweedFS,
/// where `tools/test` started one).
extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    /// `s3`: SeaweedFS; `s3rclone`: rclone's `serve s3`, which ignores `If-None-Match` (the store's fallback).
    case memory, file, s3, s3rclone
    var testDescription: String { rawValue }

    /// The stores this machine has.
    static var available: [StoreKind] {
        var kinds: [StoreKind] = [.memory, .file]
        if let settings = S3TestStore.settings {
            kinds.append(.s3)
            if settings.secondEndpoint != nil { kinds.append(.s3rclone) }
        }
        return kinds
    }

    /// Whether two writers racing for one name always leave exactly one winner.
    var refusesRacingWrites: Bool { self != .s3rclone }
}

/// An S3 client for the test store `kind` (`.s3` or `.s3rclone`), on `bucket` (created).
func s3Client(_ kind: StoreKind, bucket: String, transport: HTTPTransport) async throws -> S3Client {
    let settings = try #require(S3TestStore.settings)
    let endpoint = kind == .s3rclone ? try #require(settings.secondEndpoint) : settings.endpoint
    let client = S3Client(
        location: S3Location(endpoint: endpoint, bucket: bucket, prefix: "buffers"),
        credentials: S3Credentials(accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey),
        transport: transport
    )
    try await client.createBucket()
    return client
}

/// Runs `body` with a fresh store of `kind` (its container created unless `created` is false).
func withStore<T>(
    _ kind: StoreKind,
    created: Bool = true,
    _ body: (any BlobStore, String) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory(prefix: "tyger-store") { dir in
        switch kind {
        case .memory:
            return try await body(InMemoryBlobStore(createContainer: created), dir)
        case .file:
            let store = FileBlobStore(directory: dir + "/buffer")
            if created { try await store.createContainer() }
            return try await body(store, dir + "/buffer")
        case .s3, .s3rclone:
            return try await HTTPTransport.withTransport { transport in
                let client = try await s3Client(kind, bucket: "tyger-contract", transport: transport)
                let store = S3BlobStore(client: client, container: S3TestStore.uniqueName("b"))
                if created { try await store.createContainer() }
                return try await body(store, dir)
            }
        }
    }
}

func put(
    _ store: any BlobStore,
    _ name: String,
    _ bytes: [UInt8],
    _ metadata: BlobMetadata = BlobMetadata()
) async throws {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    try await store.put(name, bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]), metadata: metadata)
}

func storeError(_ body: () async throws -> Void) async -> BlobStoreError.Code? {
    do {
        try await body()
        return nil
    } catch let error as BlobStoreError {
        return error.code
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct BlobNameTests {
    @Test(arguments: [
        ".bufferstart", ".bufferend", "00/000", "02/00/000", "1D/00/00/00/00/000", "a", "a-b_c.d", "A/b/C", "x..y",
        String(repeating: "a", count: 1024),
    ])
    func accepts(name: String) throws {
        try BlobName.validate(name)
    }

    @Test(arguments: [
        "", "..", ".", "/abs", "/etc/passwd", "a//b", "a/../b", "../a", "a/..", "./a", "a/.", "a/", "/", "a b", "a\\b",
        "a:b", "ü", "a\nb", "a\0b", String(repeating: "a", count: 1025),
    ])
    func rejects(name: String) throws {
        let error = #expect(throws: BlobStoreError.self) { try BlobName.validate(name) }
        #expect(error?.code == .invalidName)
    }
}

@Suite struct BlobStoreContractTests {
    @Test(arguments: StoreKind.available)
    func putThenGetKeepsBytesAndMetadata(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            for (name, count) in [("00/000", 1000), ("02/00/000", 0), (".bufferstart", 19), ("11/01/02/345", 300_000)] {
                let bytes = Payload.random(count: count, seed: UInt64(count))
                // Opaque to the store, except the CRC32C, which an S3 store has the store check: a true one.
                let crc = bytes.withUnsafeBytes { Checksums.crc32c($0, seed: 0) }
                var metadata = BlobMetadata(
                    contentMD5: "abc==",
                    properties: ["crc32c": String(crc, radix: 16).leftPadded(to: 8), "custom": "x y/+="]
                )
                metadata.hashChain = "chain/+="
                try await put(store, name, bytes, metadata)
                let blob = try #require(try await store.get(name))
                #expect(mismatch(Array(blob.bytes), bytes) == nil, "\(name)")
                #expect(blob.metadata == metadata)
                #expect(try await store.head(name) == metadata)
            }
        }
    }

    /// A blob whose CRC32C is not its bytes' is refused by the store and not stored (an S3 store has the store check
    /// it); the memory and file stores keep metadata as given.
    @Test(.enabled(if: S3TestStore.settings != nil))
    func anS3StoreRefusesABlobWhoseChecksumIsNotItsBytes() async throws {
        try await withStore(.s3) { store, _ in
            let code = await storeError {
                try await put(store, "00/000", [1, 2, 3], BlobMetadata(properties: ["crc32c": "01234567"]))
            }
            #expect(code == .corrupt)
            let stored = try await store.head("00/000")
            #expect(stored == nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func missingBlobsAreNil(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.get("00/000") == nil)
            #expect(try await store.head("00/000") == nil)
            #expect(try await store.get(".bufferend") == nil)
            try await put(store, "00/000", [1])
            #expect(try await store.get("00/001") == nil)
            #expect(try await store.get("01/000") == nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func blobsAreWriteOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await put(store, "00/000", [1, 2, 3], BlobMetadata(contentMD5: "first"))
            let code = await storeError { try await put(store, "00/000", [9, 9], BlobMetadata(contentMD5: "second")) }
            #expect(code == .alreadyExists)
            let blob = try #require(try await store.get("00/000"))
            #expect(Array(blob.bytes) == [1, 2, 3])
            #expect(blob.metadata.contentMD5 == "first")
        }
    }

    @Test(arguments: StoreKind.available.filter(\.refusesRacingWrites))
    func concurrentPutsOfOneNameHaveExactlyOneWinner(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            for round in 0..<5 {
                let name = "00/00\(round)"
                let results = try await withThrowingTaskGroup(of: (Int, BlobStoreError.Code?).self) { group in
                    for i in 0..<8 {
                        group.addTask {
                            let code = await storeError {
                                try await put(
                                    store,
                                    name,
                                    Payload.random(count: 50_000, seed: UInt64(i)),
                                    BlobMetadata(contentMD5: "\(i)")
                                )
                            }
                            return (i, code)
                        }
                    }
                    var all: [(Int, BlobStoreError.Code?)] = []
                    for try await r in group { all.append(r) }
                    return all
                }
                let winners = results.filter { $0.1 == nil }.map(\.0)
                #expect(winners.count == 1)
                #expect(results.filter { $0.1 == .alreadyExists }.count == 7)
                let winner = try #require(winners.first)
                let blob = try #require(try await store.get(name))
                #expect(blob.metadata.contentMD5 == "\(winner)")
                #expect(mismatch(Array(blob.bytes), Payload.random(count: 50_000, seed: UInt64(winner))) == nil)
            }
        }
    }

    @Test(arguments: StoreKind.available, ["..", "/etc/passwd", "a//b", "../escape", "00/../../x", "", "a b"])
    func invalidNamesAreRejected(kind: StoreKind, name: String) async throws {
        try await withStore(kind) { store, dir in
            #expect(await storeError { try await put(store, name, [1]) } == .invalidName)
            #expect(await storeError { _ = try await store.get(name) } == .invalidName)
            #expect(await storeError { _ = try await store.head(name) } == .invalidName)
            if kind == .file {
                #expect(TestFiles.regularFiles(under: dir).isEmpty)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func missingContainer(kind: StoreKind) async throws {
        try await withStore(kind, created: false) { store, _ in
            #expect(try await !store.containerExists())
            #expect(await storeError { try await put(store, "00/000", [1]) } == .containerNotFound)
            #expect(await storeError { try await put(store, ".bufferstart", [1]) } == .containerNotFound)
            #expect(await storeError { _ = try await store.get("00/000") } == .containerNotFound)
            try await store.createContainer()
            try await store.createContainer()  // idempotent
            #expect(try await store.containerExists())
            try await put(store, "00/000", [1])
            #expect(try await store.get("00/000") != nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func writerLeaseIsExclusive(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.writerState() == .notStarted)
            let lease = try await store.acquireWriterLease()
            #expect(try await store.writerState() == .active)
            #expect(await storeError { _ = try await store.acquireWriterLease() } == .leaseHeld)
            await lease.release()
            await lease.release()  // idempotent
            #expect(await writerGone(store))
            let again = try await store.acquireWriterLease()
            #expect(try await store.writerState() == .active)
            await again.release()
            #expect(await writerGone(store))
        }
    }

    @Test(arguments: StoreKind.available)
    func syncSucceeds(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await put(store, "00/000", [1])
            try await put(store, "02/00/000", [2])
            try await store.sync()
            #expect(try await store.get("02/00/000") != nil)
        }
    }
}

/// What the S3 store learns of a store before it writes: SeaweedFS refuses a second `If-None-Match: *` PUT and
/// checks `x-amz-checksum-crc32c`; rclone's `serve s3` does neither, so the store checks for the name first and
/// sends a `Content-MD5` (which rclone checks) instead of the CRC32C.
@Suite(.enabled(if: S3TestStore.settings?.secondEndpoint != nil))
struct S3CapabilityTests {
    @Test func eachStoreIsProbedForWhatItChecks() async throws {
        try await HTTPTransport.withTransport { transport in
            let seaweed = try await s3Client(.s3, bucket: "tyger-probe", transport: transport)
            let seaweedChecks = try await seaweed.capabilities()
            #expect(seaweedChecks.conditionalCreate && seaweedChecks.checksCRC32C)
            let rclone = try await s3Client(.s3rclone, bucket: "tyger-probe", transport: transport)
            let rcloneChecks = try await rclone.capabilities()
            #expect(!rcloneChecks.conditionalCreate && !rcloneChecks.checksCRC32C)
        }
    }

    /// On the store without conditional writes a blob written twice one after the other is still refused the second
    /// time (the name is looked up first), and a wrong checksum is still refused (as a wrong Content-MD5).
    @Test func theFallbackKeepsSequentialWritesWriteOnceAndChecksTheBytes() async throws {
        try await withStore(.s3rclone) { store, _ in
            try await put(store, "00/000", [1, 2, 3], BlobMetadata(contentMD5: "first"))
            #expect(await storeError { try await put(store, "00/000", [4]) } == .alreadyExists)
            let blob = try #require(try await store.get("00/000"))
            #expect(Array(blob.bytes) == [1, 2, 3])
            let wrongMD5 = BlobMetadata(contentMD5: "AAAAAAAAAAAAAAAAAAAAAA==")
            #expect(await storeError { try await put(store, "00/001", [1, 2, 3], wrongMD5) } == .corrupt)
        }
    }
}
