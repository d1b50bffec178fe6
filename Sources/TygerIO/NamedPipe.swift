#if canImport(Glibc)
private import Glibc
#endif

/// Named pipes (FIFOs): creation and opening without blocking Swift's cooperative pool.
///
/// Opening a FIFO blocks until the other end opens. These functions do the blocking open on a dedicated thread and,
/// if the awaiting task is cancelled, open the opposite end themselves so the stuck open returns.
public enum NamedPipe {
    /// Creates a FIFO at `path` with `mode`. The corresponding C function is `mkfifo`.
    public static func create(at path: String, mode: UInt32 = 0o600) throws {
        guard mkfifo(path, mode_t(mode)) == 0 else { throw TygerIOError.system("mkfifo", path: path) }
    }

    /// Opens a FIFO for reading, waiting (off the cooperative pool) until a writer opens it.
    /// - Returns: A blocking descriptor; the caller closes it.
    public static func openForReading(_ path: String) async throws -> Int32 {
        try await open(path, flags: O_RDONLY, unblockWith: O_WRONLY | O_NONBLOCK)
    }

    /// Opens a FIFO for writing, waiting (off the cooperative pool) until a reader opens it.
    /// - Returns: A blocking descriptor; the caller closes it.
    public static func openForWriting(_ path: String) async throws -> Int32 {
        try await open(path, flags: O_WRONLY, unblockWith: O_RDONLY | O_NONBLOCK)
    }

    private static func open(_ path: String, flags: Int32, unblockWith: Int32) async throws -> Int32 {
        let fd = try await withTaskCancellationHandler {
            try await DedicatedThread.run(name: "tyger-fifo-open") {
                while true {
                    let fd = Glibc.open(path, flags | O_CLOEXEC)
                    if fd >= 0 { return fd }
                    if errno == EINTR { continue }
                    throw TygerIOError.system("open", path: path)
                }
            }
        } onCancel: {
            // Satisfy the blocked open from our side so its thread can finish; the result is discarded below.
            let peer = Glibc.open(path, unblockWith | O_CLOEXEC)
            if peer >= 0 {
                DedicatedThread.start { usleep(200_000); Glibc.close(peer) }
            }
        }
        if Task.isCancelled {
            Glibc.close(fd)
            throw TygerIOError(.cancelled, "opening \(path) was cancelled")
        }
        return fd
    }
}
