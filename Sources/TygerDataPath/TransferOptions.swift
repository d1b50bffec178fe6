public import TygerCore

/// Options of the write pipeline.
public struct WriteOptions: Sendable {
    /// Bytes per block, and so the maximum raw size of a blob. Default 4 MiB.
    public var blockSize = 4 << 20
    /// Concurrent blob puts. Default 16.
    public var dop = 16
    /// Emit a partial block this long after its first byte; `nil` to fill every block. Default 1 s.
    public var flushInterval: Duration? = .seconds(1)
    /// The buffer format. Default native.
    public var format = BufferFormat.native
    /// Compression (native format only). Default none.
    public var compression = CompressionLevel.none
    /// Blocks in the ring; default `min(dop, 16) + 2`. Memory is `ringSlots × blockSize`.
    public var ringSlots: Int?
    /// Create the buffer's container if it does not exist (`file://` buffers).
    public var createContainer = true

    public init() {}

    var effectiveRingSlots: Int { ringSlots ?? (min(dop, 16) + 2) }
}

/// Options of the read pipeline.
public struct ReadOptions: Sendable {
    /// Concurrent blob gets. Default 32.
    public var dop = 32
    /// Upper bound of fetched-but-not-yet-written bytes; with 4 MiB blobs the default allows 16 in flight.
    public var memoryBudget = 64 << 20
    /// Expected blob size, used with `memoryBudget` before any blob is seen.
    public var expectedBlobSize = 4 << 20
    /// How long one look for a blob that is not there yet may wait for it where the store can wait
    /// (``BlobStore/awaitBlob(_:upTo:)``: a long poll over HTTP, a look every 5 ms on local disk). Default 2 s;
    /// between waits the reader checks that the writer is still at work.
    public var blobWait: Duration = .seconds(2)
    /// Start at this byte of the stream (`buffer read --offset`): the blobs before it are passed over by their
    /// metadata (``StoredPrefix``), their chain still checked. Default 0.
    public var offset: Int64 = 0
    /// How long a buffer found abandoned (its writer stopped without `.bufferend`) is watched for a resumed write
    /// (`buffer write --resume`) before the reader reports it abandoned. Default zero: at once. A run's input waits
    /// (``BufferReader/runInputResumeWindow``), so that an interrupted `run exec` can be attached to again.
    public var resumeWindow: Duration = .zero
    /// How long to wait before polling again for a blob that is not there yet, by attempt number, where the store
    /// cannot wait.
    public var backoff: @Sendable (Int) -> Duration = { attempt in
        switch attempt {
        case ..<10: .milliseconds(20)
        case ..<100: .milliseconds(100)
        case ..<1000: .milliseconds(500)
        default: .seconds(1)
        }
    }

    public init() {}

    var window: Int { max(2, min(dop, memoryBudget / max(1, expectedBlobSize))) }
}

/// What a finished transfer did.
public struct TransferSummary: Sendable, Equatable {
    /// Raw (decoded) bytes moved.
    public var bytes: Int64
    /// Data blobs, not counting the empty end marker.
    public var blobs: Int64
    /// Bytes stored (after compression) — for writes.
    public var storedBytes: Int64

    public init(bytes: Int64, blobs: Int64, storedBytes: Int64) {
        self.bytes = bytes
        self.blobs = blobs
        self.storedBytes = storedBytes
    }
}
