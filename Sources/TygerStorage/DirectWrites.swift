private import CTygerNative
private import Synchronization
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// Writes blob data with direct I/O (`O_DIRECT`): past the page cache, straight from the caller's memory to the
/// device.
///
/// The copy into the page cache is most of a durable write's CPU and, on a machine short of free memory, most of its
/// time: `gen 4G | dd oflag=direct` took 3.1–3.4 s where `gen 4G | cat > f; sync` took 5.5–7.4 s on the development
/// machine. Data written this way is not durable any sooner (the device may cache it; the store's `sync()` still
/// makes it so), and it is not in the page cache, so its first read comes from the disk.
///
/// Only memory and file offsets aligned to ``alignment`` (the page size; every device block size in use divides it)
/// go direct, in multiples of it; the caller writes the rest through the page cache. A file system without direct
/// I/O (tmpfs) or one that refuses the write turns it off for the store's lifetime. On by default;
/// `TYGER_DIRECT_WRITES=0` turns it off.
public final class DirectWrites: Sendable {
    static let alignment = 4096
    /// The threads direct writes run on: a direct write holds its thread until the device has the data, so they get
    /// threads of their own instead of the shared blocking pool, where they would hold up small puts, reads and
    /// renames behind them. Four: more writes in flight did not write faster, and a saturated device makes every
    /// other `fsync` and `syncfs` of the machine wait.
    static let pool = BlockingPool(threads: 4)
    /// On unless `TYGER_DIRECT_WRITES=0`.
    public static let enabledByDefault = getenv("TYGER_DIRECT_WRITES").map { String(cString: $0) != "0" } ?? true

    private let enabled: Atomic<Bool>

    init(enabled: Bool = DirectWrites.enabledByDefault) { self.enabled = Atomic(enabled) }

    /// Direct writes that are off, for writes that must go through the page cache (staged blocks).
    static let off = DirectWrites(enabled: false)

    /// Whether direct writes are still on.
    var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Writes all of `bytes` at `offset`: the aligned part with direct I/O when that is possible
    /// (``writeAligned(_:_:at:minimum:)``), the rest through the page cache.
    ///
    /// - Throws: `TygerIOError` when a write fails.
    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64, minimum: Int) throws {
        let written = try writeAligned(fd, bytes, at: offset, minimum: minimum)
        if written < bytes.count {
            try FileDescriptorOps.pwriteAll(
                fd,
                UnsafeRawBufferPointer(rebasing: bytes[written...]),
                at: offset + Int64(written)
            )
        }
    }

    /// Writes the aligned part of `bytes` at `offset` with direct I/O when `bytes` starts on an aligned address,
    /// `offset` is aligned and that part is at least `minimum` bytes.
    ///
    /// - Returns: How many bytes were written (a multiple of ``alignment``, or 0): the caller writes the others.
    /// - Throws: `TygerIOError` when the write fails for another reason than the file system refusing direct I/O
    ///   (a full disk, an I/O error).
    private func writeAligned(
        _ fd: Int32,
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int64,
        minimum: Int
    ) throws -> Int {
        let aligned = bytes.count & ~(Self.alignment - 1)
        guard aligned >= max(minimum, Self.alignment), Int(bitPattern: bytes.baseAddress) % Self.alignment == 0,
            offset % Int64(Self.alignment) == 0, isEnabled
        else { return 0 }
        guard tyger_set_direct(fd, 1) == 0 else {
            enabled.store(false, ordering: .relaxed)  // a file system without direct I/O
            return 0
        }
        defer { _ = tyger_set_direct(fd, 0) }
        do {
            try FileDescriptorOps.pwriteAll(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<aligned]), at: offset)
            return aligned
        } catch let error as TygerIOError where error.errno == EINVAL {
            // Opened with O_DIRECT but the write refused (an alignment the file system needs that is not ours).
            enabled.store(false, ordering: .relaxed)
            return 0
        }
    }
}
