private import CTygerNative

#if canImport(Glibc)
private import Glibc
#endif

/// Path-level system calls for executables: permission checks, atomic renames, opening files and locks.
///
/// Calls that can be interrupted retry on `EINTR`; failures throw ``TygerIOError`` with the errno and the path.
public enum PathOps {
    /// Whether this process may read (and, with `write`, write) `path`.
    ///
    /// The corresponding C function is `access`.
    public static func isAccessible(_ path: String, write: Bool = false) -> Bool {
        access(path, write ? (R_OK | W_OK) : R_OK) == 0
    }

    /// Renames `source` to `destination` atomically, replacing it if present.
    ///
    /// - Throws: ``TygerIOError`` when the rename fails.
    /// The corresponding C function is `rename`.
    public static func rename(_ source: String, to destination: String) throws {
        guard Glibc.rename(source, destination) == 0 else { throw TygerIOError.system("rename", path: destination) }
    }

    /// How ``open(_:mode:)`` opens a path.
    public enum OpenMode: Sendable {
        /// Read only.
        case read
        /// Write only, created (0644) if missing and truncated.
        case writeTruncating
        /// Write only, created with `permissions` if missing, appending.
        case append(permissions: UInt32)
        /// Read and write, created with `permissions` if missing (lock files).
        case readWriteCreating(permissions: UInt32)
    }

    /// Opens `path` with close-on-exec, retrying on `EINTR`. Opening a FIFO blocks until its peer opens: call it
    /// off the cooperative pool for FIFOs.
    ///
    /// - Returns: The new descriptor; the caller closes it (``FileDescriptorOps/close(_:)``).
    /// - Throws: ``TygerIOError`` when the path cannot be opened.
    /// The corresponding C function is `open`.
    public static func open(_ path: String, mode: OpenMode) throws -> Int32 {
        let (flags, permissions): (Int32, UInt32) =
            switch mode {
            case .read: (O_RDONLY | O_CLOEXEC, 0)
            case .writeTruncating: (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            case .append(let p): (O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, p)
            case .readWriteCreating(let p): (O_RDWR | O_CREAT | O_CLOEXEC, p)
            }
        return try FileDescriptorOps.retryingOnInterrupt("open", path: path) { Glibc.open(path, flags, permissions) }
    }

    /// Sets the permission bits of `path` (e.g. `0o700` to make an existing directory private again).
    ///
    /// The corresponding C function is `chmod`.
    /// - Throws: `TygerIOError` with the errno and the path.
    public static func setPermissions(_ path: String, _ mode: UInt32) throws {
        _ = try FileDescriptorOps.retryingOnInterrupt("chmod", path: path) { chmod(path, mode_t(mode)) }
    }

    /// The contents of `path` when it is a regular file smaller than `limit` bytes; `nil` otherwise (missing, a
    /// directory, a FIFO, too large, unreadable).
    ///
    /// The corresponding C functions are `stat`, `open` and `read`.
    public static func contentsOfSmallRegularFile(_ path: String, limit: Int) -> [UInt8]? {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < limit,
            let fd = try? open(path, mode: .read)
        else { return nil }
        defer { FileDescriptorOps.close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            let n = bytes.withUnsafeMutableBytes {
                try? FileDescriptorOps.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            guard let n else { return nil }
            if n == 0 { break }
            filled += n
        }
        return Array(bytes[0..<filled])
    }

    /// Takes an exclusive `flock` on `fd`, waiting for other holders, retrying on `EINTR`. Blocks the thread: call
    /// it on a dedicated thread (``DedicatedThread/run(name:_:)``).
    ///
    /// - Throws: ``TygerIOError`` when the lock cannot be taken.
    /// The corresponding C function is `flock`.
    public static func lockExclusively(_ fd: Int32) throws {
        // tyger_flock retries on EINTR itself.
        guard tyger_flock(fd, 1, 0) == 0 else { throw TygerIOError.system("flock") }
    }
}
