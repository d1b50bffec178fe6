private import CTygerNative
public import TygerCore
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

extension FileBlobStore {
    /// Starts a streaming upload of one blob: the bytes go to a temporary file beside the blob's final place as they
    /// arrive, and `FileBlobUpload.commit(metadata:)` moves the finished file into place atomically, write-once.
    ///
    /// Use it when the blob's bytes are not all in memory (an HTTP request body). Only the chunk being appended is
    /// ever held by the store. An upload that is neither committed nor aborted removes its temporary file when it is
    /// released, so a failed request leaves nothing behind.
    ///
    /// ```swift
    /// let upload = try store.beginUpload("00/000")
    /// for try await chunk in body { try chunk.withUnsafeReadableBytes { try upload.append($0) } }
    /// try upload.commit(metadata: BlobMetadata(contentMD5: md5))
    /// ```
    ///
    /// - Parameter name: The blob name (`.bufferstart`, `00/000`, ...).
    /// - Returns: The open upload.
    /// - Throws: `BlobStoreError` `.invalidName` for a bad name, `.containerNotFound` when the buffer's directory is
    ///   missing, `.alreadyExists` when the blob is already there (checked again, race-free, at commit), `.io` when the
    ///   temporary file cannot be created.
    public func beginUpload(_ name: String) throws -> FileBlobUpload {
        try BlobName.validate(name)
        try prepareParent(of: name)
        let final = directory + "/" + name
        if access(final, F_OK) == 0 { throw BlobStoreError(.alreadyExists, "blob \(name) already exists") }
        let (fd, temp) = try createTemporaryFile(beside: final)
        return FileBlobUpload(name: name, fd: fd, temporaryPath: temp, finalPath: final, kind: .blob, direct: direct)
    }
}

/// One blob (or one staged block of a blob, see `FileBlobStore.beginBlockUpload(_:blockId:)`) being streamed into a
/// `FileBlobStore`; see `FileBlobStore.beginUpload(_:)`.
///
/// Not thread-safe: one task appends, then commits or aborts. After `commit` or `abort` the upload is finished and
/// further calls are programmer errors.
public final class FileBlobUpload {
    /// The blob's name in its buffer.
    public let name: String
    /// Bytes appended so far.
    public private(set) var byteCount: Int64 = 0
    private var fd: Int32
    private let temporaryPath: String
    private let finalPath: String
    private let kind: Kind

    /// What the upload becomes: a write-once blob with its metadata trailer, or a staged block (bare bytes, which
    /// a later upload of the same block ID replaces).
    enum Kind {
        case blob
        case block
    }

    private let direct: DirectWrites

    init(
        name: String,
        fd: Int32,
        temporaryPath: String,
        finalPath: String,
        kind: Kind,
        direct: DirectWrites = .off
    ) {
        self.name = name
        self.fd = fd
        self.temporaryPath = temporaryPath
        self.finalPath = finalPath
        self.kind = kind
        self.direct = direct
    }

    // MARK: Staged (direct) writes

    /// The page-aligned memory that ``stage(_:)`` fills, and how much of it is filled.
    private var staging: UnsafeMutableRawBufferPointer?
    private var staged = 0
    /// The size of the staging memory.
    static let stagingSize = 1 << 20
    /// Staging memory of every upload of the process, reused (up to 64 blocks of 1 MiB kept).
    static let stagingBlocks = MemoryPool(limit: 64 * stagingSize, largest: stagingSize)

    /// Copies as much of `bytes` as fits into the upload's page-aligned staging memory (1 MiB), for
    /// ``writeStaged()`` to write with direct I/O. Use it instead of ``append(_:)`` for data that arrives in pieces
    /// (an HTTP body): a copy into memory used again and again costs less than the copy into fresh page-cache pages.
    ///
    /// - Returns: How many bytes it took; fewer than `bytes.count` when the staging memory is full
    ///   (``stagingIsFull``): call ``writeStaged()``, then stage the rest.
    /// - Precondition: The upload is not finished.
    public func stage(_ bytes: UnsafeRawBufferPointer) -> Int {
        precondition(fd >= 0, "stage after commit or abort of blob \(name)")
        let memory = staging ?? Self.stagingBlocks.take(Self.stagingSize)
        staging = memory
        let n = min(bytes.count, memory.count - staged)
        if n > 0 {
            UnsafeMutableRawBufferPointer(rebasing: memory[staged..<(staged + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            staged += n
        }
        return n
    }

    /// Whether the staging memory is full.
    public var stagingIsFull: Bool { staging.map { staged == $0.count } ?? false }

    /// Writes what is staged after the bytes written so far, on the direct writes' threads: with direct I/O where the file
    /// system allows, the part of it past the last whole page (only the last write of a blob has one) through the
    /// page cache. Call it when ``stagingIsFull``, and once after the last ``stage(_:)``.
    ///
    /// - Throws: `BlobStoreError` `.noSpace` (disk full), `.io`.
    public func writeStaged() async throws {
        precondition(fd >= 0, "writeStaged after commit or abort of blob \(name)")
        guard let staging, staged > 0 else { return }
        let region = SendableRegion(UnsafeRawBufferPointer(rebasing: staging[0..<staged]))
        let (fd, offset, direct) = (fd, byteCount, direct)
        do {
            try await DirectWrites.pool.run { try direct.write(fd, region.bytes, at: offset, minimum: 256 << 10) }
        } catch let error as TygerIOError {
            throw BlobStoreError.writeFailed(error, blob: name)
        }
        byteCount += Int64(staged)
        staged = 0
    }

    /// Appends bytes to the blob.
    ///
    /// - Parameter bytes: The next bytes; valid for the duration of the call.
    /// - Throws: `BlobStoreError` `.io` when the write fails (disk full, ...).
    /// - Precondition: The upload is not finished.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(fd >= 0, "append after commit or abort of blob \(name)")
        precondition(staged == 0, "append with staged bytes not written of blob \(name)")
        guard bytes.count > 0 else { return }
        do {
            try FileDescriptorOps.pwriteAll(fd, bytes, at: byteCount)
        } catch let error as TygerIOError {
            throw BlobStoreError.writeFailed(error, blob: name)
        }
        byteCount += Int64(bytes.count)
    }

    /// Writes the metadata trailer and moves the blob into place; after this, readers see the whole blob.
    ///
    /// - Parameter metadata: Content-MD5 and user metadata to keep with the blob.
    /// - Throws: `BlobStoreError` `.alreadyExists` when another upload of the same name committed first (the
    ///   temporary file is removed and the existing blob is untouched), `.io` when a write or the rename fails.
    /// - Precondition: The upload is not finished, and is a blob's (from `FileBlobStore.beginUpload(_:)`).
    public func commit(metadata: BlobMetadata) throws {
        precondition(fd >= 0, "commit after commit or abort of blob \(name)")
        precondition(kind == .blob, "commit(metadata:) of a staged block of \(name)")
        precondition(staged == 0, "commit with staged bytes not written of blob \(name)")
        defer { finish() }
        let trailer = FileBlobStore.trailer(for: metadata)
        do {
            try trailer.withUnsafeBytes { try FileDescriptorOps.pwriteAll(fd, $0, at: byteCount) }
        } catch let error as TygerIOError {
            throw BlobStoreError.writeFailed(error, blob: name)
        }
        close(fd)
        fd = -1
        if tyger_rename_noreplace(AT_FDCWD, temporaryPath, AT_FDCWD, finalPath) != 0 {
            let e = errno
            if e == EEXIST { throw BlobStoreError(.alreadyExists, "blob \(name) already exists") }
            if e == ENOSPC || e == EDQUOT {
                throw BlobStoreError(.noSpace, "cannot write blob \(name): disk full (rename failed)")
            }
            throw BlobStoreError(.io, "rename \(finalPath): \(String(cString: strerror(e)))")
        }
        committed = true
    }

    /// Stages the block: moves its bytes into place, replacing a block staged before with the same ID (as Azure's
    /// Put Block does).
    ///
    /// - Throws: `BlobStoreError` `.io` when the rename fails (the staging directory was removed meanwhile by a
    ///   commit of the blob or a delete of the buffer), `.noSpace` when the disk is full.
    /// - Precondition: The upload is not finished, and is a block's (from `FileBlobStore.beginBlockUpload`).
    public func commitBlock() throws {
        precondition(fd >= 0, "commitBlock after commit or abort of a block of \(name)")
        precondition(kind == .block, "commitBlock() of blob \(name)")
        precondition(staged == 0, "commitBlock with staged bytes not written of a block of \(name)")
        defer { finish() }
        close(fd)
        fd = -1
        if rename(temporaryPath, finalPath) != 0 {
            let e = errno
            if e == ENOSPC || e == EDQUOT {
                throw BlobStoreError(.noSpace, "cannot stage a block of \(name): disk full (rename failed)")
            }
            throw BlobStoreError(.io, "rename \(finalPath): \(String(cString: strerror(e)))")
        }
        committed = true
    }

    /// Drops the upload and its temporary file. Idempotent.
    public func abort() { finish() }

    private var committed = false

    private func finish() {
        if let staging {
            Self.stagingBlocks.put(staging)
            self.staging = nil
            staged = 0
        }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !committed && !removed {
            unlink(temporaryPath)
            removed = true
        }
    }
    private var removed = false

    deinit { finish() }
}
