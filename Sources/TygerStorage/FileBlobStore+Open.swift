private import CTygerNative
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

    /// Removes the temporary files of uploads and the staged blocks that no live process will finish or use any
    /// more: what a crash of the server or of a local writer leaves behind, and the blocks a previous server process
    /// never assembled, with the staging folders they leave empty. A server calls it at start, for every buffer
    /// under `root`.
    ///
    /// Both kinds of file are named `<name>.tmp-<pid>-<instance>-<n>` (``processTag``; `.tmp-<pid>-<n>` before
    /// the instance ID). A file is a leftover, and goes, when:
    /// - its PID is this process's and its instance is not (or it has none): a PID names one process at a time,
    ///   and this process is that one, so the file's writer was an earlier process with the same PID (a server
    ///   restarted in a container is PID 1 again) and has ended;
    /// - or its PID is another's and no process has that PID (`kill(pid, 0)` fails with `ESRCH`).
    ///
    /// Everything else stays: this process's own files, and those whose PID is alive (a local `file://` writer at
    /// work in the same data directory; its instance cannot be checked from here, so a file whose PID was reused by
    /// an unrelated process stays until a start after that process has ended).
    ///
    /// PIDs are only comparable within one PID namespace: a writer in another container sharing the directory can
    /// have any PID, this process's too. So a leftover by name is removed only when no writer holds a lock on it:
    /// uploads keep a shared `flock` on their temporary file while it is open (``createTemporaryFile(beside:)``),
    /// which works across namespaces. Staged blocks are closed once staged and hold no lock; they belong to the
    /// server that staged them.
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
                } else if let owner = temporaryFileOwner(child), isLeftover(owner), removeUnlessLocked(full) {
                    removed.append(full)
                }
            }
        }
        return removed
    }

    /// The owner in a temporary file's or staged block's name: `<name>.tmp-<pid>-<instance>-<n>`, or
    /// `<name>.tmp-<pid>-<n>` as written before the instance ID (`instance` nil); `nil` for any other name.
    static func temporaryFileOwner(_ name: String) -> (pid: Int32, instance: String?)? {
        guard let marker = name.ranges(of: ".tmp-").last else { return nil }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let pid = Int32(parts[0]), pid > 0,
            UInt64(parts[parts.count - 1]) != nil
        else { return nil }
        guard parts.count == 3 else { return (pid, nil) }
        guard parts[1].utf8.count == 16, UInt64(parts[1], radix: 16) != nil else { return nil }
        return (pid, String(parts[1]))
    }

    /// Whether a file of `owner` is a leftover by the rule of ``removeStaleTemporaryFiles(under:)``.
    static func isLeftover(_ owner: (pid: Int32, instance: String?)) -> Bool {
        if owner.pid == getpid() { return owner.instance != processInstance }
        return kill(owner.pid, 0) != 0 && errno == ESRCH
    }

    /// Removes `path` unless a writer holds a lock on it; true when it was removed.
    private static func removeUnlessLocked(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd >= 0 {
            // Held until after the unlink: a writer locks the file before this check or not at all.
            defer { close(fd) }
            if tyger_flock(fd, 1, 1) != 0 && errno == EWOULDBLOCK { return false }
        }
        return unlink(path) == 0
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
