import Dispatch

#if canImport(Glibc)
private import Glibc
#endif

/// A source that reads through a `DispatchIO` stream channel (the design card's Dispatch I/O path).
///
/// Kept for comparison: on this machine it is slower than `DescriptorSource` (see `docs/performance.md`), and
/// it does not support `waitAtMost` (a DispatchIO read completes only when full or at end of stream), so the
/// flush interval does not apply with it.
///
/// Tuning: the channel's high-water mark is the read size (one whole block per handler call) and the low-water
/// mark is 1 MiB, so the handler runs per pipe-full rather than per page.
public final class DispatchIOSource: ByteSource {
    private let channel: DispatchIO
    private let queue = DispatchQueue(label: "tyger.dispatchio.source")

    /// Wraps `fd`, which the caller keeps open for the source's life.
    public init(fd: Int32, lowWater: Int = 1 << 20) {
        FileDescriptorOps.enlargePipe(fd)
        channel = DispatchIO(type: .stream, fileDescriptor: fd, queue: queue, cleanupHandler: { _ in })
        channel.setLimit(lowWater: lowWater)
    }

    deinit { channel.close(flags: []) }

    public var supportsTimeouts: Bool { false }

    public func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        let done = DispatchSemaphore(value: 0)
        let state = DispatchReadState()
        channel.setLimit(highWater: buffer.count)
        let base = UnsafeMutableRawBufferPointerSendable(buffer)
        channel.read(offset: 0, length: buffer.count, queue: queue) { finished, data, error in
            if let data, !data.isEmpty {
                let target = UnsafeMutableRawBufferPointer(rebasing: base.buffer[state.count...])
                let n = min(data.count, target.count)
                data.copyBytes(to: target, count: n)
                state.count += n
            }
            if finished {
                state.error = error
                done.signal()
            }
        }
        done.wait()
        if state.error != 0 { throw TygerIOError.system("DispatchIO.read", errno: state.error) }
        return state.count == 0 ? .endOfStream : .bytes(state.count)
    }
}

/// A sink that writes through a `DispatchIO` stream channel. Kept for comparison with `DescriptorSink`.
public final class DispatchIOSink: ByteSink {
    private let channel: DispatchIO
    private let queue = DispatchQueue(label: "tyger.dispatchio.sink")

    public init(fd: Int32) {
        FileDescriptorOps.enlargePipe(fd)
        channel = DispatchIO(type: .stream, fileDescriptor: fd, queue: queue, cleanupHandler: { _ in })
    }

    deinit { channel.close(flags: []) }

    public func write(_ chunk: OutputChunk) throws {
        guard chunk.bytes.count > 0 else { return }
        let done = DispatchSemaphore(value: 0)
        let state = DispatchReadState()
        // The chunk's owner keeps the bytes alive until this call returns, after the write completes.
        let data = DispatchData(bytesNoCopy: chunk.bytes, deallocator: .custom(nil, {}))
        channel.write(offset: 0, data: data, queue: queue) { finished, _, error in
            if finished {
                state.error = error
                done.signal()
            }
        }
        done.wait()
        if state.error != 0 { throw TygerIOError.system("DispatchIO.write", errno: state.error) }
    }

    public func finish() throws {}
}

private final class DispatchReadState: @unchecked Sendable {
    // @unchecked: written only on the channel's serial queue, read after the semaphore hands it over.
    var count = 0
    var error: Int32 = 0
}

private struct UnsafeMutableRawBufferPointerSendable: @unchecked Sendable {
    // @unchecked: the caller's buffer outlives the read, which completes before `read(into:)` returns.
    let buffer: UnsafeMutableRawBufferPointer
    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }
}
