private import Synchronization
public import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// A sink that collects everything written to it in memory.
public final class MemorySink: ByteSink {
    private let state = Mutex<(bytes: [UInt8], writes: Int, finished: Bool)>(([], 0, false))
    private let failAfter: Int?
    private let delayMilliseconds: Int

    /// - Parameters:
    ///   - failAfter: Throw `TygerIOError` `.brokenPipe` once this many bytes were written (nil: never).
    ///   - delayMilliseconds: Sleep this long in every write: a slow consumer.
    public init(failAfter: Int? = nil, delayMilliseconds: Int = 0) {
        self.failAfter = failAfter
        self.delayMilliseconds = delayMilliseconds
    }

    public func write(_ chunk: OutputChunk) throws {
        if delayMilliseconds > 0 { usleepMilliseconds(delayMilliseconds) }
        try state.withLock {
            if let failAfter, $0.bytes.count >= failAfter {
                throw TygerIOError(.brokenPipe, "test sink: reader went away")
            }
            $0.bytes += Array(chunk.bytes)
            $0.writes += 1
        }
    }

    public func finish() throws { state.withLock { $0.finished = true } }

    /// Everything written so far.
    public var bytes: [UInt8] { state.withLock { $0.bytes } }
    /// How many `write` calls there were.
    public var writes: Int { state.withLock { $0.writes } }
    /// Whether `finish()` was called.
    public var finished: Bool { state.withLock { $0.finished } }
}

/// A source over bytes in memory, handing out at most `maxRead` bytes per read (no timeouts, like a regular file).
public final class ArraySource: ByteSource {
    private let bytes: [UInt8]
    private let maxRead: Int
    private let offset = Mutex(0)
    private let failAt: Int?

    /// - Parameters:
    ///   - maxRead: The most bytes one read returns.
    ///   - failAt: Throw `TygerIOError` `.system` once this many bytes were read (nil: never).
    public init(_ bytes: [UInt8], maxRead: Int = 1 << 20, failAt: Int? = nil) {
        self.bytes = bytes
        self.maxRead = maxRead
        self.failAt = failAt
    }

    public var supportsTimeouts: Bool { false }

    public func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        try offset.withLock { offset in
            if let failAt, offset >= failAt { throw TygerIOError(.system, "test source: injected read failure") }
            var n = min(buffer.count, maxRead, bytes.count - offset)
            if let failAt { n = min(n, max(0, failAt - offset)) }
            if n <= 0 { return .endOfStream }
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)  // n > 0: both non-nil
            }
            offset += n
            return .bytes(n)
        }
    }
}

/// A source that blocks until `release()` and then reports end of stream: a writer stuck on a quiet input.
public final class GateSource: ByteSource {
    private let opened = Mutex(false)
    private let prefix: [UInt8]
    private let sent = Mutex(0)

    /// - Parameter prefix: Bytes handed out before blocking.
    public init(prefix: [UInt8] = []) { self.prefix = prefix }

    public var supportsTimeouts: Bool { true }

    /// Lets the source end.
    public func release() { opened.withLock { $0 = true } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        let (offset, n) = sent.withLock { s -> (Int, Int) in
            let n = min(prefix.count - s, buffer.count)
            defer { s += n }
            return (s, n)
        }
        if n > 0 {
            // n > 0, so both base addresses exist.
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            return .bytes(n)
        }
        let clock = ContinuousClock()
        let deadline = waitAtMost.map { clock.now + $0 }
        while !opened.withLock({ $0 }) {
            if let deadline, clock.now >= deadline { return .timedOut }
            usleepMilliseconds(2)
        }
        return .endOfStream
    }
}

/// Sleeps the calling thread.
public func usleepMilliseconds(_ ms: Int) { usleep(UInt32(ms * 1000)) }

/// Sleeps the calling thread for some microseconds.
public func usleepMicroseconds(_ us: Int) { usleep(UInt32(us)) }
