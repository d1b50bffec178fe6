private import CTygerNative

#if canImport(Glibc)
private import Glibc
#endif

/// Thin, retrying wrappers over the descriptor syscalls the data path uses.
///
/// Each retries on `EINTR` and throws `TygerIOError` with the errno otherwise.
public enum FileDescriptorOps {
    /// Reads up to `buffer.count` bytes. Returns 0 at end of stream.
    /// The corresponding C function is `read`.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try retryingOnInterrupt("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Writes all of `bytes`, looping over short writes.
    /// - Throws: `TygerIOError` `.brokenPipe` when the reader has gone (SIGPIPE must be ignored).
    /// The corresponding C function is `write`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = try retryingOnInterrupt("write") {
                Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)  // count > 0 here
            }
            offset += n
        }
    }

    /// Writes all of `bytes` at `offset`. The corresponding C function is `pwrite`.
    public static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = try retryingOnInterrupt("pwrite") {
                Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            done += n
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`, or throws. The corresponding C function is `pread`.
    public static func preadExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = try retryingOnInterrupt("pread") {
                Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 { throw TygerIOError(.system, "pread: unexpected end of file") }
            done += n
        }
    }

    /// Waits until `fd` is readable or `timeout` passes. Returns false on timeout.
    /// The corresponding C function is `poll`.
    public static func waitReadable(_ fd: Int32, timeout: Duration) throws -> Bool {
        let (seconds, attoseconds) = timeout.components
        let ms = max(0, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return try retryingOnInterrupt("poll") { poll(&pfd, 1, ms) } > 0
    }

    /// Closes `fd`, ignoring errors (there is nothing useful to do with them at this point).
    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// The kind of file `fd` refers to.
    public enum Kind: Sendable { case regular, pipe, characterDevice, socket, other }

    /// Returns the kind of file behind `fd`. The corresponding C function is `fstat`.
    public static func kind(_ fd: Int32) -> Kind {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .other }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFIFO: return .pipe
        case S_IFCHR: return .characterDevice
        case S_IFSOCK: return .socket
        default: return .other
        }
    }

    /// Moves a regular file's offset to `offset` from its start.
    /// The corresponding C function is `lseek`.
    public static func seek(_ fd: Int32, to offset: Int64) throws {
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else {
            let e = errno
            throw TygerIOError(.system, "lseek: \(String(cString: strerror(e)))", errno: e)
        }
    }

    /// The size of a regular file; `nil` for anything else (a pipe, a terminal).
    public static func size(_ fd: Int32) -> Int64? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Raises a pipe's capacity (1 MiB is this machine's `pipe-max-size`); a no-op for other files.
    /// Returns the resulting capacity, or nil if `fd` is not a pipe.
    @discardableResult
    public static func enlargePipe(_ fd: Int32, to size: Int = 1 << 20) -> Int? {
        guard kind(fd) == .pipe else { return nil }
        let current = tyger_get_pipe_size(fd)
        if current >= size { return Int(current) }
        var want = Int32(size)
        while want >= 65536 {
            if tyger_set_pipe_size(fd, want) >= 0 { return Int(want) }
            want /= 2
        }
        return current >= 0 ? Int(current) : nil
    }

    /// Ignores SIGPIPE for the process, so a vanished reader shows up as EPIPE. Call at startup of executables.
    public static func ignoreSIGPIPE() { signal(SIGPIPE, SIG_IGN) }

    /// Sets or clears O_NONBLOCK.
    public static func setNonBlocking(_ fd: Int32, _ on: Bool) { _ = tyger_set_nonblocking(fd, on ? 1 : 0) }
}
