import TygerIO

#if canImport(Glibc)
import Glibc
#endif

/// Small file helpers for the server's own state (keys, tokens): owner-only files, written atomically.
enum PrivateFile {
    /// Reads a whole file.
    ///
    /// - Returns: The bytes, or `nil` when the file does not exist.
    /// - Throws: `TygerServerError` `.io` for any other failure.
    static func read(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw failure("open", path)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try retrying("read", path) {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// Creates a new file with `mode` holding `bytes`; fails if it exists.
    ///
    /// - Returns: `false` when the file already exists (someone else created it first).
    /// - Throws: `TygerServerError` `.io` for any other failure.
    static func createExclusive(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws -> Bool {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw failure("create", path)
        }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        try writeAll(fd, bytes, path)
        guard fsync(fd) == 0 else { throw failure("fsync", path) }
        ok = true
        return true
    }

    /// Replaces a file atomically (temporary file, fsync, rename) with owner-only permissions.
    ///
    /// - Throws: `TygerServerError` `.io`.
    static func replace(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let temp = path + ".tmp-\(getpid())"
        unlink(temp)
        guard try createExclusive(temp, bytes, mode: mode) else { throw failure("create", temp) }
        guard rename(temp, path) == 0 else {
            let error = failure("rename", path)
            unlink(temp)
            throw error
        }
    }

    /// Creates a directory (and its parents) if missing; the last one with `mode`.
    ///
    /// - Throws: `TygerServerError` `.io`.
    static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        var current = path.hasPrefix("/") ? "" : "."
        let parts = path.split(separator: "/")
        for (i, part) in parts.enumerated() {
            current += "/" + part
            if mkdir(current, i == parts.count - 1 ? mode : 0o755) != 0 && errno != EEXIST {
                throw failure("mkdir", current)
            }
        }
        // An existing directory is tightened too (older versions created data directories 0755).
        if chmod(path, mode) != 0 { throw failure("chmod", path) }
    }

    /// The identity of a file's current version (inode, size, change time), to notice replacements cheaply.
    static func version(_ path: String) -> [Int64]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [Int64(st.st_ino), Int64(st.st_size), Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec)]
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = try retrying("write", path) {
                bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }  // non-empty here
            }
            offset += n
        }
    }

    /// Runs a system call with ``FileDescriptorOps/retryingOnInterrupt(_:path:_:)``, reporting failures as `.io`.
    private static func retrying<T: FixedWidthInteger & SignedInteger>(
        _ operation: String,
        _ path: String,
        _ body: () -> T
    ) throws -> T {
        do {
            return try FileDescriptorOps.retryingOnInterrupt(operation, path: path, body)
        } catch {
            throw TygerServerError(.io, error.message, cause: error)
        }
    }

    static func failure(_ operation: String, _ path: String) -> TygerServerError {
        TygerServerError(.io, "\(operation) \(path): \(String(cString: strerror(errno)))")
    }
}
