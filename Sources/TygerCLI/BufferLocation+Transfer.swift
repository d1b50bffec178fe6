import TygerClient
import TygerDataPath
import TygerIO

extension BufferLocation.Resolved {
    /// Streams `fd` into the target: straight into the run's named pipe (an ephemeral buffer of the embedded
    /// server), through the run's relay (an ephemeral buffer elsewhere), or into blobs with the write pipeline.
    ///
    /// - Parameters:
    ///   - fd: The input descriptor (used as is for the named pipe).
    ///   - source: The same input as a byte source (relay and blobs).
    func write(
        from fd: Int32,
        source: any ByteSource,
        options: WriteOptions,
        counter: LockedCounter
    ) async throws
        -> TransferSummary
    {
        if let fifoPath {
            let pipe = try await NamedPipe.openForWriting(fifoPath)
            defer { FileDescriptorOps.close(pipe) }
            let bytes = try await DedicatedThread.run { try PipeCopier.copy(from: fd, to: pipe, bytesMoved: counter) }
            return TransferSummary(bytes: bytes, blobs: 0, storedBytes: 0)
        }
        if let relay {
            let bytes = try await relay.write(from: source, bytesMoved: counter)
            return TransferSummary(bytes: bytes, blobs: 0, storedBytes: 0)
        }
        return try await BufferWriter.write(from: source, to: store, options: options, bytesStored: counter)
    }

    /// Streams the target into `fd`: from the run's named pipe, through the relay, or from blobs with the read
    /// pipeline.
    ///
    /// - Parameters:
    ///   - fd: The output descriptor (used as is for the named pipe).
    ///   - sink: The same output as a byte sink (relay and blobs).
    func read(
        to fd: Int32,
        sink: any ByteSink,
        options: ReadOptions,
        counter: LockedCounter
    ) async throws
        -> TransferSummary
    {
        if let fifoPath {
            let pipe = try await NamedPipe.openForReading(fifoPath)
            defer { FileDescriptorOps.close(pipe) }
            let bytes = try await DedicatedThread.run { try PipeCopier.copy(from: pipe, to: fd, bytesMoved: counter) }
            return TransferSummary(bytes: bytes, blobs: 0, storedBytes: bytes)
        }
        if let relay {
            let bytes = try await relay.read(to: sink, bytesMoved: counter)
            return TransferSummary(bytes: bytes, blobs: 0, storedBytes: bytes)
        }
        return try await BufferReader.read(from: store, to: sink, options: options, bytesWritten: counter)
    }
}
