public import TygerCore
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// Staged blocks: the pieces of a blob uploaded one by one (Azure's Put Block) before one request assembles them
/// into the blob (Put Block List).
///
/// - **Layout.** The blocks of blob `name` are files in `<dir>/.staged~blocks/<sha256-hex of name>/`, one per block
///   ID: `<hex of the ID>.tmp-<pid>-<instance>-0`. `~` is no blob-name character, so no blob can be called like the
///   folder.
/// - **Lifetime.** A block lives until the blob is assembled (which removes every staged block of the blob), the
///   buffer is deleted (which removes its directory), or the server process ends: the name carries the process's
///   PID and random instance ID (``processTag``), as the temporary files of uploads do, so a new process never sees
///   them, even with the same PID, and ``removeStaleTemporaryFiles(under:)`` removes them at the next start.
/// - **Replace.** Staging an ID again replaces the block (atomically, by rename), as Azure does.
extension FileBlobStore {
    /// The folder of a buffer's directory that holds staged blocks.
    public static let stagedBlocksFolder = ".staged~blocks"
    /// The longest block ID, in bytes (before base64), as Azure.
    public static let maxBlockIdLength = 64

    /// The directory of the blocks staged for blob `name`.
    func stagingDirectory(of name: String) -> String {
        directory + "/" + Self.stagedBlocksFolder + "/" + stagingFolder(of: name)
    }

    /// The folder of ``stagedBlocksFolder`` that holds the blocks of blob `name`: the SHA-256 of the name, in hex.
    private func stagingFolder(of name: String) -> String {
        Array(name.utf8).withUnsafeBytes { Checksums.sha256Hex($0) }
    }

    /// The suffix of this process's staged blocks: another process's, even one with the same PID, never matches.
    private static let stagedSuffix = ".tmp-\(processTag)-0"

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func stagedBlockPath(of name: String, blockId: [UInt8]) -> String {
        stagingDirectory(of: name) + "/" + Self.hex(blockId) + Self.stagedSuffix
    }

    /// Starts the upload of one block of blob `name`; `FileBlobUpload.commitBlock()` stages it.
    ///
    /// - Parameters:
    ///   - name: The blob the block belongs to (which need not exist, and must not, to be assembled later).
    ///   - blockId: The block's ID, 1 to ``maxBlockIdLength`` bytes.
    /// - Returns: The open upload.
    /// - Throws: `BlobStoreError` `.invalidName` for a bad blob name or block ID, `.containerNotFound` when the
    ///   buffer's directory is missing or is deleted meanwhile (it is never created again, see
    ///   `openDirectories(inside:)`), `.alreadyExists` when the blob was committed meanwhile (which removes its
    ///   staging folder), `.io` when the staging file cannot be created.
    public func beginBlockUpload(_ name: String, blockId: [UInt8]) throws -> FileBlobUpload {
        try BlobName.validate(name)
        guard !blockId.isEmpty, blockId.count <= Self.maxBlockIdLength else {
            throw BlobStoreError(.invalidName, "a block ID must be 1 to \(Self.maxBlockIdLength) bytes")
        }
        let final = stagedBlockPath(of: name, blockId: blockId)
        do {
            let folder = try openDirectories(inside: Self.stagedBlocksFolder + "/" + stagingFolder(of: name))
            defer { close(folder) }
            let (fd, temp) = try createTemporaryFile(beside: final, in: folder)
            // Staged blocks are read back when the block list is committed, seconds later: through the page cache.
            return FileBlobUpload(name: name, fd: fd, temporaryPath: temp, finalPath: final, kind: .block)
        } catch let error as BlobStoreError where error.code == .containerNotFound {
            // A staging folder also goes when its blob is committed (`removeStagedBlocks`).
            if access(directory + "/" + name, F_OK) == 0 {
                throw BlobStoreError(.alreadyExists, "blob \(name) already exists")
            }
            throw error
        }
    }

    /// The length in bytes of the IDs of the blocks staged for `name` (Azure asks that all have the same length),
    /// or `nil` when none is staged.
    public func stagedBlockIdLength(_ name: String) -> Int? {
        guard let dir = opendir(stagingDirectory(of: name)) else { return nil }
        defer { closedir(dir) }
        let suffix = Self.stagedSuffix
        while let entry = readdir(dir) {
            let child = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)  // d_name is NUL-terminated
            }
            if child.hasSuffix(suffix) { return (child.utf8.count - suffix.utf8.count) / 2 }
        }
        return nil
    }

    /// The size of a staged block, or `nil` when no block with that ID is staged for `name`.
    public func stagedBlockLength(_ name: String, blockId: [UInt8]) -> Int? {
        var st = stat()
        guard stat(stagedBlockPath(of: name, blockId: blockId), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return nil
        }
        return Int(st.st_size)
    }

    /// Appends staged blocks of `name` to `upload` in the order given (an ID may come more than once), handing
    /// every piece to `observe` before it is written (checksums, limits).
    ///
    /// - Parameters:
    ///   - name: The blob the blocks were staged for.
    ///   - blockIds: The blocks, in the blob's order.
    ///   - upload: Where the bytes go (an upload of `name` begun with `beginUpload(_:)`).
    ///   - observe: Sees each piece (at most 1 MiB); what it throws stops the copy.
    /// - Throws: `BlobStoreError` `.blockNotFound` for a block that is not staged, `.io`/`.noSpace` when a read or
    ///   write fails, and whatever `observe` throws.
    public func appendStagedBlocks(
        of name: String,
        blockIds: [[UInt8]],
        to upload: FileBlobUpload,
        observe: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { chunk.deallocate() }
        for blockId in blockIds {
            let path = stagedBlockPath(of: name, blockId: blockId)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT || errno == ENOTDIR {
                    throw BlobStoreError(.blockNotFound, "block \(Self.hex(blockId)) of \(name) is not staged")
                }
                throw ioError("open", path)
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw ioError("fstat", path) }
            let length = Int(st.st_size)
            var offset = 0
            while offset < length {
                let n = min(chunk.count, length - offset)
                let piece = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<n])
                do {
                    try FileDescriptorOps.preadExactly(fd, into: piece, at: Int64(offset))
                } catch {
                    throw BlobStoreError(.io, "cannot read a staged block of \(name): \(error)")
                }
                try observe(UnsafeRawBufferPointer(piece))
                try upload.append(UnsafeRawBufferPointer(piece))
                offset += n
            }
        }
    }

    /// Removes every block staged for `name` (after the blob is assembled, or to give it up). Best effort.
    public func removeStagedBlocks(_ name: String) {
        try? Self.removeTree(stagingDirectory(of: name))
        rmdir(directory + "/" + Self.stagedBlocksFolder)  // only when no other blob has staged blocks
    }
}
