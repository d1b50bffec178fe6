private import CTygerNative
public import TygerCore

#if canImport(Glibc)
private import Glibc
#endif

/// A piece of output on its way to the sink, with what to do once it is written.
public struct OutputChunk: @unchecked Sendable {
    // @unchecked: `bytes` stays valid and unchanged until `release` runs; the pipeline guarantees it.
    /// The bytes to write.
    public var bytes: UnsafeRawBufferPointer
    /// True when the bytes are pages of a write-once file mapping, which may be handed to a pipe by reference
    /// (`vmsplice`) because nobody will ever change them. Reused buffers must say false.
    public var immutablePages: Bool
    /// Keeps `bytes` alive: the blob mapping or ring block lease they live in. Dropping the chunk (written or
    /// discarded after a failure) releases it.
    public var owner: (any AnyObject & Sendable)?

    public init(bytes: UnsafeRawBufferPointer, immutablePages: Bool, owner: (any AnyObject & Sendable)?) {
        self.bytes = bytes
        self.immutablePages = immutablePages
        self.owner = owner
    }
}

/// A blocking sink of bytes, used from one dedicated thread.
public protocol ByteSink: Sendable {
    /// Writes all of `chunk.bytes`.
    /// - Throws: `TygerIOError` (`.brokenPipe` when the reader went away).
    func write(_ chunk: OutputChunk) throws
    /// Makes written data durable where that means something (regular files); a no-op otherwise.
    func finish() throws
}

/// How a `DescriptorSink` moves bytes into a pipe.
public enum PipeWriteMode: String, Sendable, CaseIterable {
    /// `write(2)` always.
    case write
    /// `vmsplice(2)` immutable mapped pages into pipes (no copy); `write(2)` for everything else.
    case vmsplice
}

/// Writes to a descriptor with `write(2)`, or `vmsplice(2)` for immutable mapped pages going into a pipe.
public final class DescriptorSink: ByteSink {
    public let fd: Int32
    private let isPipe: Bool
    private let mode: PipeWriteMode

    /// Wraps `fd`, which the caller keeps open; pipes are enlarged to 1 MiB.
    public init(fd: Int32, mode: PipeWriteMode = .vmsplice) {
        self.fd = fd
        self.isPipe = FileDescriptorOps.kind(fd) == .pipe
        self.mode = mode
        if isPipe { FileDescriptorOps.enlargePipe(fd) }
    }

    public func write(_ chunk: OutputChunk) throws {
        guard chunk.bytes.count > 0 else { return }
        if isPipe, mode == .vmsplice, chunk.immutablePages {
            var offset = 0
            while offset < chunk.bytes.count {
                let n: Int
                do {
                    n = try FileDescriptorOps.retryingOnInterrupt("vmsplice") {
                        tyger_vmsplice(fd, chunk.bytes.baseAddress! + offset, chunk.bytes.count - offset)
                    }
                } catch  where error.code == .brokenPipe {
                    throw error
                } catch {
                    n = 0
                }
                if n > 0 {
                    offset += n
                    continue
                }
                // Anything else (EINVAL on an odd descriptor): fall back to copying the rest.
                try FileDescriptorOps.writeAll(fd, UnsafeRawBufferPointer(rebasing: chunk.bytes[offset...]))
                return
            }
            return
        }
        try FileDescriptorOps.writeAll(fd, chunk.bytes)
    }

    public func finish() throws {}
}

/// Runs a sink on a dedicated thread, fed through a bounded queue: the last stage of the read pipeline.
public enum OutputPump {
    /// Writes every chunk from `input` to `sink` until the queue closes, dropping each (and so its owner) once written.
    ///
    /// - Returns: Bytes written.
    /// - Throws: The sink's error; `input` is failed with it so producers stop.
    public static func run(
        input: HandoffQueue<OutputChunk>,
        sink: any ByteSink,
        bytesWritten: LockedCounter? = nil
    ) throws -> Int64 {
        var total: Int64 = 0
        do {
            while let chunk = try input.popBlocking() {
                try sink.write(chunk)
                total += Int64(chunk.bytes.count)
                bytesWritten?.add(Int64(chunk.bytes.count))
            }
            try sink.finish()
        } catch {
            input.fail(error)
            throw error
        }
        return total
    }
}
