import Foundation
import Testing
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The two stores the pipelines are tested against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, file
    var testDescription: String { rawValue }
}

/// A store and, for the file store, its directory.
struct TestStore: Sendable {
    let store: any BlobStore
    let kind: StoreKind
    let directory: String

    var memory: InMemoryBlobStore? { store as? InMemoryBlobStore }

    /// Runs `body` with a fresh, created store of `kind`.
    static func with<T>(_ kind: StoreKind, _ body: (TestStore) async throws -> T) async throws -> T {
        try await withTemporaryDirectory(prefix: "tyger-dp") { dir in
            let buffer = dir + "/buffer"
            let store: any BlobStore = kind == .memory ? InMemoryBlobStore() : FileBlobStore(directory: buffer)
            try await store.createContainer()
            return try await body(TestStore(store: store, kind: kind, directory: buffer))
        }
    }

    /// A stored blob's bytes and metadata.
    func blob(_ name: String) async throws -> (bytes: [UInt8], metadata: BlobMetadata)? {
        guard let b = try await store.get(name) else { return nil }
        return (Array(b.bytes), b.metadata)
    }

    /// Replaces (or, with nil, deletes) a blob behind the pipeline's back.
    func replace(_ name: String, with blob: (bytes: [UInt8], metadata: BlobMetadata)?) throws {
        switch kind {
        case .memory:
            memory!._replace(
                name,
                with: blob.map { b in b.bytes.withUnsafeBytes { StoredBlob(copying: $0, metadata: b.metadata) } }
            )  // kind == .memory
        case .file:
            let path = directory + "/" + name
            unlink(path)
            if let blob {
                let parent = (path as NSString).deletingLastPathComponent
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
                try FileBlobFile.write(
                    FileBlobFile.Parts(data: blob.bytes, metadataJSON: blob.metadata.encodedJSON()),
                    to: path
                )
            }
        }
    }
}

/// Write options for tests: small blocks, no flush timer.
func testWriteOptions(
    format: BufferFormat = .native,
    compression: CompressionLevel = .none,
    blockSize: Int = 64 << 10,
    dop: Int = 4
) -> WriteOptions {
    var o = WriteOptions()
    o.format = format
    o.compression = compression
    o.blockSize = blockSize
    o.dop = dop
    o.flushInterval = nil
    return o
}

/// Read options for tests: fast polling.
func testReadOptions(dop: Int = 8) -> ReadOptions {
    var o = ReadOptions()
    o.dop = dop
    o.expectedBlobSize = 64 << 10
    o.backoff = { _ in .milliseconds(10) }
    return o
}

@discardableResult
func writeBuffer(
    _ bytes: [UInt8],
    to store: any BlobStore,
    options: WriteOptions = testWriteOptions()
) async throws
    -> TransferSummary
{
    try await BufferWriter.write(from: ArraySource(bytes, maxRead: 50_000), to: store, options: options)
}

func readBuffer(_ store: any BlobStore, options: ReadOptions = testReadOptions()) async throws -> [UInt8] {
    let sink = MemorySink()
    let summary = try await BufferReader.read(from: store, to: sink, options: options)
    #expect(summary.bytes == Int64(sink.bytes.count))
    #expect(sink.finished)
    return sink.bytes
}

/// Reads and expects a `TygerCoreError`; returns it.
func readError(_ store: any BlobStore, options: ReadOptions = testReadOptions()) async -> (any Error)? {
    do {
        _ = try await BufferReader.read(from: store, to: MemorySink(), options: options)
        return nil
    } catch {
        return error
    }
}

func coreCode(_ error: (any Error)?) -> TygerCoreError.Code? { (error as? TygerCoreError)?.code }
