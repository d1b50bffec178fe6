private import CTygerNative

#if canImport(Glibc)
private import Glibc
#endif

/// Copies one descriptor to another as fast as the kernel allows: `splice(2)` when either side is a pipe (pages move
/// by reference), a `read`/`write` loop with a 1 MiB buffer otherwise. Used for relays that store nothing (ephemeral
/// buffers on the local machine).
public enum PipeCopier {
    /// Copies until end of input.
    ///
    /// - Returns: Bytes copied.
    /// - Throws: `TygerIOError` (`.brokenPipe` when the reader of `output` went away).
    @discardableResult
    public static func copy(from input: Int32, to output: Int32, bytesMoved: LockedCounter? = nil) throws -> Int64 {
        FileDescriptorOps.enlargePipe(input)
        FileDescriptorOps.enlargePipe(output)
        var total: Int64 = 0
        var useSplice = FileDescriptorOps.kind(input) == .pipe || FileDescriptorOps.kind(output) == .pipe
        while useSplice {
            let n: Int
            do {
                n = try FileDescriptorOps.retryingOnInterrupt("splice") { tyger_splice(input, nil, output, 1 << 20, 1) }
            } catch {
                guard error.errno == EINVAL || error.errno == ENOSYS else { throw error }
                useSplice = false
                break
            }
            if n == 0 { return total }
            total += Int64(n)
            bytesMoved?.add(Int64(n))
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let n = try FileDescriptorOps.read(input, into: buffer)
            if n == 0 { return total }
            try FileDescriptorOps.writeAll(output, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
            bytesMoved?.add(Int64(n))
        }
    }
}
