import Foundation
import Testing
import TygerCore
import TygerStorage
import TygerTestSupport

struct FileBlobStoreUploadTests {
    func makeStore() throws -> (FileBlobStore, String) {
        let root = NSTemporaryDirectory() + "/tyger-upload-\(UInt64.random(in: 0...UInt64.max))"
        let store = FileBlobStore(directory: root + "/buf")
        try FileManager.default.createDirectory(atPath: root + "/buf", withIntermediateDirectories: true)
        return (store, root)
    }

    @Test func streamedBlobReadsBackLikeAPutBlob() async throws {
        let (store, root) = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let chunks: [[UInt8]] = [Array(repeating: 1, count: 1000), [], Array(repeating: 2, count: 70_000), [3]]
        let upload = try store.beginUpload("02/00/000")
        for chunk in chunks { try chunk.withUnsafeBytes { try upload.append($0) } }
        #expect(upload.byteCount == 71_001)
        let metadata = BlobMetadata(contentMD5: "abc=", properties: ["k": "v"])
        // Not visible before the commit.
        #expect(try await store.get("02/00/000") == nil)
        try upload.commit(metadata: metadata)
        let blob = try #require(try await store.get("02/00/000"))
        #expect(Array(blob.bytes) == chunks.flatMap { $0 })
        #expect(blob.metadata == metadata)
        let opened = try #require(try store.openBlob("02/00/000"))
        #expect(opened.length == 71_001)
        var middle = [UInt8](repeating: 0, count: 4)
        try middle.withUnsafeMutableBytes { try opened.read(into: $0, at: 999) }
        #expect(middle == [1, 2, 2, 2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/buf/02/00") == ["000"])
    }

    /// Pieces of odd sizes staged and written a MiB at a time (as the data plane does with request bodies) read back
    /// whole; on a file system with direct I/O the whole MiBs are not in the page cache after the commit.
    @Test func stagedPiecesReadBackAndWholeMebibytesGoPastThePageCache() async throws {
        let (plain, root) = try makeStore()
        let store = FileBlobStore(directory: plain.directory, directWrites: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = Payload.random(count: (3 << 20) + 777, seed: 11)
        let upload = try store.beginUpload("00/000")
        var offset = 0
        var piece = 1
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece * 7919)
            var taken = offset
            while taken < end {
                taken += bytes[taken..<end].withUnsafeBytes { upload.stage($0) }
                if upload.stagingIsFull { try await upload.writeStaged() }
            }
            offset = end
            piece += 13
        }
        try await upload.writeStaged()
        #expect(upload.byteCount == Int64(bytes.count))
        try upload.commit(metadata: BlobMetadata(contentMD5: "m"))

        let cached = try FileBlobStoreTests.cachedPages(root + "/buf/00/000", first: 768)
        let tmpfs = try FileBlobStoreTests.fileSystemType(of: root) == "tmpfs"
        #expect(tmpfs ? cached == 768 : cached == 0, "\(cached) of 768 pages in the page cache")

        let blob = try #require(try await store.get("00/000"))
        #expect(mismatch(Array(blob.bytes), bytes) == nil)
    }

    @Test func uploadsAreWriteOnceAndFailedUploadsLeaveNothing() async throws {
        let (store, root) = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = try store.beginUpload("00/000")
        let second = try store.beginUpload("00/000")
        try ([1, 2, 3] as [UInt8]).withUnsafeBytes { try first.append($0) }
        try ([9] as [UInt8]).withUnsafeBytes { try second.append($0) }
        try second.commit(metadata: BlobMetadata())
        let error = #expect(throws: BlobStoreError.self) { try first.commit(metadata: BlobMetadata()) }
        #expect(error?.code == .alreadyExists)
        #expect(throws: BlobStoreError.self) { _ = try store.beginUpload("00/000") }
        #expect(try await store.get("00/000").map { Array($0.bytes) } == [9])

        do {
            let abandoned = try store.beginUpload("00/001")
            try ([7] as [UInt8]).withUnsafeBytes { try abandoned.append($0) }
        }  // released without commit: its temporary file goes
        let aborted = try store.beginUpload("00/002")
        aborted.abort()
        aborted.abort()
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/buf/00") == ["000"])
    }

    @Test func namesAndContainersAreChecked() throws {
        let (store, root) = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: BlobStoreError.self) { _ = try store.beginUpload("../escape") }
        let missing = FileBlobStore(directory: root + "/nothere")
        let error = #expect(throws: BlobStoreError.self) { _ = try missing.beginUpload("00/000") }
        #expect(error?.code == .containerNotFound)
        #expect(throws: BlobStoreError.self) { _ = try missing.openBlob("00/000") }
        try store.removeContainer()
        #expect(!FileManager.default.fileExists(atPath: root + "/buf"))
        #expect(throws: BlobStoreError.self) { try store.removeContainer() }
    }
}
