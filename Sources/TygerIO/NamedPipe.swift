private import Synchronization

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
        let state = PendingOpen()
        let fd = try await withTaskCancellationHandler {
            try await DedicatedThread.run(name: "tyger-fifo-open") {
                defer { state.finish() }
                if state.isCancelled { throw TygerIOError(.cancelled, "opening \(path) was cancelled") }
                return try FileDescriptorOps.retryingOnInterrupt("open", path: path) {
                    Glibc.open(path, flags | O_CLOEXEC)
                }
            }
        } onCancel: {
            // Satisfy the blocked open from our side so its thread can finish; the result is discarded below.
            // Keep trying until that thread is done: it may not have reached open(2) yet (a busy machine can start it
            // late), and a non-blocking open for writing fails with ENXIO until a reader is in open(2).
            state.cancel()
            DedicatedThread.start(name: "tyger-fifo-unblock") {
                while !state.isFinished {
                    let peer = Glibc.open(path, unblockWith | O_CLOEXEC)
                    usleep(10_000)
                    if peer >= 0 { Glibc.close(peer) }
                }
            }
        }
        if Task.isCancelled {
            Glibc.close(fd)
            throw TygerIOError(.cancelled, "opening \(path) was cancelled")
        }
        return fd
    }
}

/// A FIFO open in progress: whether its task was cancelled, and whether its thread is done with open(2).
private final class PendingOpen: Sendable {
    private let state = Mutex<(cancelled: Bool, finished: Bool)>((false, false))

    var isCancelled: Bool { state.withLock { $0.cancelled } }
    var isFinished: Bool { state.withLock { $0.finished } }
    func cancel() { state.withLock { $0.cancelled = true } }
    func finish() { state.withLock { $0.finished = true } }
}
