private import CTygerSpawn
import Synchronization
package import TygerDataPath
package import TygerIO
import TygerModel
package import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// A descriptor closed when the last reference goes away, so a thread still using it never sees it reused.
package final class OwnedDescriptor: Sendable {
    package let fd: Int32
    package init(_ fd: Int32) { self.fd = fd }
    deinit { FileDescriptorOps.close(fd) }
}

/// Opens one end of a FIFO without ever hanging the run.
///
/// `open()` blocks (on a dedicated thread) until the process opens the other end, as a FIFO open does. `release()`
/// makes a pending or future `open()` return: it opens the opposite end non-blocking, retrying until that succeeds
/// (for a write end, only once our reader is blocked in `open`), holds it until `open()` returned, then closes it.
/// The engine releases after the process exited (so an output never opened completes empty and an input side stops)
/// and when the run is stopped.
package final class FifoOpener: Sendable {
    package let path: String
    package let forWriting: Bool
    private struct State {
        var released = false
        var openStarted = false
        var openReturned = false
    }
    private let state = StateBox()

    private final class StateBox: Sendable {
        let mutex = Mutex(State())
        func withLock<R>(_ body: (inout State) -> R) -> R { mutex.withLock { body(&$0) } }
    }

    /// An `O_PATH` handle on the FIFO: `release()` reopens it through `/proc/self/fd`, so it works even when the
    /// FIFO's directory was removed meanwhile. The release thread holds it too: closed while that thread still
    /// retried, its number could be reused by another run's FIFO, which the thread would then open and close,
    /// ending that run's output with an early end of stream.
    private let handle: OwnedDescriptor?

    package init(path: String, forWriting: Bool) {
        self.path = path
        self.forWriting = forWriting
        let fd = tyger_open_path(path)
        self.handle = fd >= 0 ? OwnedDescriptor(fd) : nil
    }

    /// Whether `release()` was called.
    package var wasReleased: Bool { state.withLock { $0.released } }

    /// Opens our end, waiting for the peer or for `release()`.
    ///
    /// - Returns: The descriptor (blocking mode).
    /// - Throws: `TygerIOError` when `open` fails (the FIFO is gone).
    package func open() async throws -> OwnedDescriptor {
        let path = self.path
        let flags = (forWriting ? O_WRONLY : O_RDONLY) | O_CLOEXEC
        state.withLock { $0.openStarted = true }
        defer { state.withLock { $0.openReturned = true } }
        let fd = try await DedicatedThread.run(name: "tyger-fifo-open") {
            try FileDescriptorOps.retryingOnInterrupt("open", path: path) { Glibc.open(path, flags) }
        }
        return OwnedDescriptor(fd)
    }

    /// ``open()``, released (so it returns) when the task is cancelled.
    package func openReleasingOnCancel() async throws -> OwnedDescriptor {
        try await withTaskCancellationHandler {
            try await open()
        } onCancel: {
            release()
        }
    }

    /// Waits (up to `timeout`) until no `open()` is pending, so the FIFO can be removed without stranding one.
    package func waitUntilSettled(timeout: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLock({ $0.openStarted && !$0.openReturned }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Makes `open()` return now or as soon as it is called (for up to a minute). Idempotent.
    package func release() {
        let first = state.withLock { s -> Bool in
            defer { s.released = true }
            return !s.released && !s.openReturned
        }
        guard first else { return }
        let path = handle.map { "/proc/self/fd/\($0.fd)" } ?? self.path
        let peerFlags = (forWriting ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC
        DedicatedThread.start(name: "tyger-fifo-release") { [state, handle] in
            defer { withExtendedLifetime(handle) {} }
            var peer: Int32 = -1
            var waited = 0
            // Until `open()` returned; if it was never called, give up after a minute.
            while !state.withLock({ $0.openReturned }) && (state.withLock({ $0.openStarted }) || waited < 60_000) {
                if peer < 0 {
                    peer = Glibc.open(path, peerFlags)
                } else if !state.withLock({ $0.openStarted }) {
                    // Nobody here is opening this end (an ephemeral pipe used directly by a local client): one open
                    // and close of the peer is enough to release whoever waits on the other end; holding it would
                    // keep a local reader from seeing end of stream.
                    break
                }
                usleep(2000)
                waited += 2
            }
            if peer >= 0 { Glibc.close(peer) }
        }
    }
}

/// A FIFO read end as a byte source that owns its descriptor.
package final class FIFOSource: ByteSource {
    private let descriptor: OwnedDescriptor
    private let source: DescriptorSource

    package init(_ descriptor: OwnedDescriptor) {
        self.descriptor = descriptor
        self.source = DescriptorSource(fd: descriptor.fd)
    }

    package var supportsTimeouts: Bool { source.supportsTimeouts }

    package func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        try source.read(into: buffer, waitAtMost: waitAtMost)
    }
}

/// A FIFO write end as a byte sink that owns its descriptor.
package final class FIFOSink: ByteSink {
    private let descriptor: OwnedDescriptor
    private let sink: DescriptorSink

    package init(_ descriptor: OwnedDescriptor) {
        self.descriptor = descriptor
        self.sink = DescriptorSink(fd: descriptor.fd)
    }

    package func write(_ chunk: OutputChunk) throws { try sink.write(chunk) }
    package func finish() throws {}
}

/// Moving a buffer through an opened FIFO, for the engine and for run agents.
package enum PipeTransfer {
    /// Streams a buffer into an input FIFO. A buffer found abandoned is waited on for
    /// ``BufferReader/runInputResumeWindow``, so that the interrupted write of a `run exec` can be resumed by
    /// attaching to the run.
    ///
    /// - Returns: The error that ended it early; `nil` when it completed, when the task was cancelled, or when the
    ///   reader went away (a broken pipe: the process stopped reading).
    package static func feed(_ descriptor: OwnedDescriptor, from store: any BlobStore) async -> (any Error)? {
        do {
            var options = ReadOptions()
            options.resumeWindow = BufferReader.runInputResumeWindow
            _ = try await BufferReader.read(from: store, to: FIFOSink(descriptor), options: options)
            return nil
        } catch {
            if Task.isCancelled { return nil }
            if let io = error as? TygerIOError, io.code == .brokenPipe { return nil }
            return error
        }
    }

    /// Streams an output FIFO into a buffer, to the FIFO's end.
    ///
    /// - Returns: The error that ended it early; `nil` when the buffer is complete.
    package static func drain(
        _ descriptor: OwnedDescriptor,
        into store: any BlobStore,
        options: WriteOptions
    ) async -> (any Error)? {
        await drain(FIFOSource(descriptor), into: store, options: options)
    }

    /// Streams a FIFO's read end (or a source wrapping it) into a buffer, to its end.
    package static func drain(
        _ source: any ByteSource,
        into store: any BlobStore,
        options: WriteOptions
    ) async -> (any Error)? {
        do {
            _ = try await BufferWriter.write(from: source, to: store, options: options)
            return nil
        } catch {
            return error
        }
    }
}
