public import TygerCore
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

extension FileBlobStore {
    /// Opens a blob for reading parts of it without loading it: what an HTTP server needs for ranged GETs.
    ///
    /// - Parameter name: The blob name.
    /// - Returns: The open blob, or `nil` when it does not exist (yet).
    /// - Throws: `BlobStoreError` `.invalidName`, `.containerNotFound` when the buffer's directory is missing,
    ///   `.corrupt` when the trailer is damaged, `.io` otherwise.
    public func openBlob(_ name: String) throws -> BlobFile? {
        guard let (fd, path) = try openExisting(name) else { return nil }
        do {
            let (metadata, length) = try readTrailer(fd: fd, name: name)
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw ioError("fstat", path) }
            let modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            return BlobFile(fd: fd, name: name, length: length, metadata: metadata, modifiedNanoseconds: modified)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Deletes the buffer's directory and every blob in it.
    ///
    /// - Throws: `BlobStoreError` `.containerNotFound` when the directory does not exist, `.io` when something in it
    ///   cannot be removed.
    public func removeContainer() throws {
        guard try containerExistsSync() else {
            throw BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)")
        }
        try Self.removeTree(directory)
    }

    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw BlobStoreError(.io, "lstat \(path): \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for child in try entries(of: path) { try removeTree(path + "/" + child) }
            guard rmdir(path) == 0 || errno == ENOENT else {
                throw BlobStoreError(.io, "rmdir \(path): \(String(cString: strerror(errno)))")
            }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else {
                throw BlobStoreError(.io, "unlink \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}

extension FileBlobStore {
    /// The names in a directory, without `.` and `..`.
    ///
    /// - Throws: `BlobStoreError` `.io` when the directory cannot be opened.
    static func entries(of path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw BlobStoreError(.io, "opendir \(path): \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var children: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)  // d_name is NUL-terminated
            }
            if name != "." && name != ".." { children.append(name) }
        }
        return children
    }

    /// Removes the temporary files of uploads that no live process is writing any more (`<name>.tmp-<pid>-<n>`,
    /// see ``temporaryPath(beside:)``): what a crash of the server or of a local writer leaves behind. A server
    /// calls it at start, for every buffer under `root`. Files of a live process (a local writer at work) stay.
    /// Staged blocks (see `beginBlockUpload(_:blockId:)`) are named the same way, so the blocks of blobs that a
    /// previous server process never assembled go too, with the staging folders they leave empty.
    ///
    /// - Parameter root: A directory of buffers, or one buffer's directory.
    /// - Returns: The paths removed.
    @discardableResult
    public static func removeStaleTemporaryFiles(under root: String) -> [String] {
        var removed: [String] = []
        var pending = [root]
        var stagingFolders: [String] = []
        defer {
            // Deepest first; rmdir leaves a folder that still holds a live process's blocks.
            for folder in stagingFolders.sorted(by: { $0.utf8.count > $1.utf8.count }) { rmdir(folder) }
        }
        while let path = pending.popLast() {
            guard let children = try? entries(of: path) else { continue }
            for child in children {
                let full = path + "/" + child
                var st = stat()
                guard lstat(full, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    pending.append(full)
                    if child == stagedBlocksFolder || path.hasSuffix("/" + stagedBlocksFolder) {
                        stagingFolders.append(full)
                    }
                } else if let pid = temporaryFileOwner(child), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH,
                    unlink(full) == 0
                {
                    removed.append(full)
                }
            }
        }
        return removed
    }

    /// The pid in a temporary file's name (`<name>.tmp-<pid>-<n>`), or `nil` for any other name.
    static func temporaryFileOwner(_ name: String) -> Int32? {
        guard let marker = name.ranges(of: ".tmp-").last else { return nil }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, UInt64(parts[1]) != nil else { return nil }
        return pid
    }
}

/// An open, write-once blob of a `FileBlobStore`: its length, metadata and modification time, and positional reads
/// of its bytes. The descriptor closes when the object is released, so it can be handed to a response writer that
/// may never run.
public final class BlobFile: Sendable {
    private let fd: Int32
    /// The blob's name in its buffer.
    public let name: String
    /// Length of the blob's bytes (without the trailer).
    public let length: Int
    /// Content-MD5 and user metadata.
    public let metadata: BlobMetadata
    /// When the blob was committed, in nanoseconds since the Unix epoch.
    public let modifiedNanoseconds: Int64

    init(fd: Int32, name: String, length: Int, metadata: BlobMetadata, modifiedNanoseconds: Int64) {
        self.fd = fd
        self.name = name
        self.length = length
        self.metadata = metadata
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    /// Asks the kernel to read `count` bytes from `offset` ahead, in one large request to the disk instead of
    /// readahead steps. Advice only: a file system that ignores it reads as before.
    public func willRead(offset: Int, count: Int) {
        guard count > 0 else { return }
        _ = posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_WILLNEED)
    }

    /// Reads `buffer.count` bytes of the blob starting at `offset`.
    ///
    /// - Parameters:
    ///   - buffer: Where to put the bytes; filled completely.
    ///   - offset: Position in the blob.
    /// - Throws: `BlobStoreError` `.io` when the read fails or the file is shorter than promised.
    /// - Precondition: `offset >= 0` and `offset + buffer.count <= length`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        precondition(
            offset >= 0 && offset + buffer.count <= length,
            "read of \(buffer.count) at \(offset) past \(length)"
        )
        do {
            try FileDescriptorOps.preadExactly(fd, into: buffer, at: Int64(offset))
        } catch {
            throw BlobStoreError(.io, "cannot read blob \(name): \(error)")
        }
    }

    deinit { close(fd) }
}
