private import CTygerNative
private import Synchronization
public import TygerCore
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// The embedded local blob store: one directory per buffer, one file per blob.
///
/// - **Layout.** A blob named `02/00/000` is the file `<dir>/02/00/000`. Each file is the blob's bytes followed by a
///   trailer: the metadata as JSON, its length (UInt32 LE) and the magic `TYGBLOB1`. Bytes start at offset 0, so a
///   reader maps them and hands the pages straight to a pipe.
/// - **Atomic and write-once.** A blob is written to a temporary file in its final directory, then moved into
///   place with `renameat2(RENAME_NOREPLACE)`: nobody ever sees a torn blob, and a second put of the same name fails
///   with `EEXIST` whatever the race.
/// - **Durability.** No fsync per blob (measured at 0.47× of `cat > file`); `sync()` runs one `syncfs(2)` plus an
///   fsync of each directory, and the writer calls it before `.bufferend` says `complete`. See `docs/storage.md`.
/// - **Writer lease.** `flock(2)` on `<dir>/.writer.lock`. The kernel drops it when the writer process exits for any
///   reason, so a reader can tell a live writer from a dead one.
public final class FileBlobStore: BlobStore {
    /// The buffer's directory.
    public let directory: String
    public var location: String { "file://\(directory)" }
    private let createdDirectories = Mutex<Set<String>>([])
    private let tempCounter = Mutex<UInt64>(0)
    /// Whether ``removeDeadWriterLeftovers()`` ran.
    private let leftoversChecked = Mutex(false)
    /// Direct I/O for blob data (when on, until the file system refuses it).
    let direct: DirectWrites
    static let magic: [UInt8] = Array("TYGBLOB1".utf8)
    static let lockName = ".writer.lock"
    /// Blobs at most this big are read into memory; larger ones are mapped.
    static let mapThreshold = 256 * 1024

    /// A store over `directory` (which need not exist yet), with direct I/O unless `TYGER_DIRECT_WRITES=0` says otherwise.
    public convenience init(directory: String) {
        self.init(directory: directory, directWrites: DirectWrites.enabledByDefault)
    }

    /// A store over `directory` that writes page-aligned blob data with direct I/O (`O_DIRECT`) or not.
    public init(directory: String, directWrites: Bool) {
        self.direct = DirectWrites(enabled: directWrites)
        var d = directory
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        self.directory = d
    }

    /// Also removes, once per store, what a writer that died left in the buffer (``removeDeadWriterLeftovers()``).
    public func containerExists() async throws -> Bool {
        var st = stat()
        let exists = stat(directory, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        if exists { removeDeadWriterLeftovers() }
        return exists
    }

    /// Removes the temporary files of the unfinished blobs of a writer that died (killed between creating a blob's
    /// temporary file and renaming it), by the rule of ``removeStaleTemporaryFiles(under:)``: once per store, and
    /// only while no writer holds the lease and the buffer has no `.bufferend` (a writer that finished left none).
    /// Without a server, whose start cleans up its buffers, nothing else would: readers and writers of the buffer do.
    func removeDeadWriterLeftovers(writerState: WriterState? = nil) {
        guard !leftoversChecked.withLock({ $0 }), (writerState ?? currentWriterState()) != .active,
            access(directory + "/" + BufferBlobNames.end, F_OK) != 0
        else { return }
        let first = leftoversChecked.withLock { checked in
            defer { checked = true }
            return !checked
        }
        if first { Self.removeStaleTemporaryFiles(under: directory) }
    }

    public func createContainer() async throws {
        try Self.makeDirectories(directory)
        createdDirectories.withLock { _ = $0.insert("") }
    }

    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                if errno == ENOTDIR { throw nameConflict(current) }
                throw BlobStoreError(.io, "cannot create directory \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func ensureParent(of name: String) throws {
        guard let slash = name.lastIndex(of: "/") else {
            guard try containerExistsSync() else {
                throw BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)")
            }
            return
        }
        let parent = String(name[..<slash])
        if createdDirectories.withLock({ $0.contains(parent) }) { return }
        close(try openDirectories(inside: parent))
        createdDirectories.withLock { _ = $0.insert(parent) }
    }

    /// Creates the folders of `relative` (`/`-separated) in the buffer's directory, each with `mkdirat` under an
    /// open descriptor of the folder above it, and opens the last.
    ///
    /// Unlike `mkdir` by path, this never creates the buffer's directory again when the buffer is deleted in the
    /// meantime: the kernel creates nothing in a directory that is gone, even through a descriptor opened before.
    ///
    /// - Returns: An open descriptor of the folder `relative` (the caller closes it).
    /// - Throws: `BlobStoreError` `.containerNotFound` when the buffer's directory is missing or is deleted
    ///   meanwhile, `.invalidName` when a prefix of `relative` is a blob, `.io` otherwise.
    func openDirectories(inside relative: String) throws -> Int32 {
        var fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw containerNotFound() }
            throw ioError("open", directory)
        }
        var path = directory
        for part in relative.split(separator: "/").map(String.init) {
            path += "/" + part
            var child: Int32 = -1
            if mkdirat(fd, part, 0o755) == 0 || errno == EEXIST {
                child = openat(fd, part, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            }
            let e = errno
            close(fd)
            guard child >= 0 else {
                if e == ENOTDIR { throw Self.nameConflict(path) }
                if e == ENOENT { throw containerNotFound() }  // this folder or one above was deleted meanwhile
                errno = e
                throw ioError("mkdir", path)
            }
            fd = child
        }
        return fd
    }

    /// The error for a buffer whose directory is missing.
    func containerNotFound() -> BlobStoreError {
        BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)")
    }

    func containerExistsSync() throws -> Bool {
        var st = stat()
        return stat(directory, &st) == 0
    }

    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        // The write and rename block (page-cache throttling can stall them for milliseconds): do them on the
        // blocking pool so the cooperative threads keep checksumming other blocks meanwhile.
        let region = SendableRegion(bytes)
        // Blobs that may go direct wait for the device: on the direct writes' own threads.
        let pool = bytes.count >= Self.directMinimum ? DirectWrites.pool : BlockingPool.shared
        try await pool.run { try self.putBlocking(name, bytes: region.bytes, metadata: metadata) }
    }

    func putBlocking(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) throws {
        try BlobName.validate(name)
        try ensureParent(of: name)
        let final = directory + "/" + name
        let (fd, temp) = try createTemporaryFile(beside: final)
        var renamed = false
        defer {
            if !renamed { unlink(temp) }
        }
        do {
            defer { close(fd) }
            let trailer = Self.trailer(for: metadata)
            // The page-aligned part with direct I/O when the memory is page-aligned (the ring's blocks are) and it is
            // on (``DirectWrites``), the rest through the page cache.
            if bytes.count > 0 { try direct.write(fd, bytes, at: 0, minimum: Self.directMinimum) }
            try trailer.withUnsafeBytes { try FileDescriptorOps.pwriteAll(fd, $0, at: Int64(bytes.count)) }
        } catch let error as TygerIOError {
            throw BlobStoreError.writeFailed(error, blob: name)  // a full disk is `.noSpace`
        }
        if tyger_rename_noreplace(AT_FDCWD, temp, AT_FDCWD, final) != 0 {
            if errno == EEXIST { throw BlobStoreError(.alreadyExists, "blob \(name) already exists") }
            throw ioError("rename", final)
        }
        renamed = true
    }

    /// Blobs smaller than this go through the page cache: a direct write waits for the device, which costs more than
    /// the copy for small blobs.
    static let directMinimum = 1 << 20

    /// The bytes that follow a blob's data: metadata JSON, its length (UInt32 LE), the magic.
    static func trailer(for metadata: BlobMetadata) -> [UInt8] {
        var trailer = metadata.encodedJSON()
        let length = UInt32(trailer.count)
        trailer += [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)]
        trailer += Self.magic
        return trailer
    }

    /// Creates the temporary file a blob is written to before its rename.
    ///
    /// - Parameters:
    ///   - final: The path the file is moved to when it is complete.
    ///   - folder: An open descriptor of the folder of `final`, to create the file in that very folder (a folder
    ///     deleted meanwhile then fails with `.containerNotFound` instead of being looked up by path).
    /// - Returns: The open descriptor (the caller closes it) and the file's path.
    /// - Throws: `BlobStoreError` `.invalidName` when a prefix of the name is a blob (a name cannot be both a blob and
    ///   a folder of blobs in the file store), `.containerNotFound` when the folder is gone with the buffer, `.io`
    ///   otherwise.
    func createTemporaryFile(beside final: String, in folder: Int32? = nil) throws -> (fd: Int32, path: String) {
        let temp = temporaryPath(beside: final)
        let fd: Int32
        if let folder {
            let leaf = String(temp[(temp.lastIndex(of: "/").map { temp.index(after: $0) } ?? temp.startIndex)...])
            fd = openat(folder, leaf, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        } else {
            fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            let e = errno
            if e == ENOTDIR { throw Self.nameConflict(final) }
            // The folder is gone: deleted with the buffer (a folder of a buffer goes no other way, except staging
            // folders, see `beginBlockUpload`).
            if e == ENOENT, try folder != nil || !containerExistsSync() { throw containerNotFound() }
            errno = e
            throw ioError("create", temp)
        }
        // A shared lock for as long as the file is open: the start-time cleanup of a server in another PID
        // namespace, where this process's PID may be its own, sees that a writer is at work. Advice only: a file
        // system without flock leaves the PID rule alone.
        _ = tyger_flock(fd, 0, 1)
        return (fd, temp)
    }

    /// The error for a blob name whose prefix is a blob, or a blob name that is a folder of blobs.
    static func nameConflict(_ path: String) -> BlobStoreError {
        BlobStoreError(.invalidName, "\(path): a blob name cannot also be a folder of other blobs")
    }

    /// Whether an open descriptor is a regular file (a blob), not a folder of blobs.
    static func isBlobFile(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// `<final>.tmp-<pid>-<instance>-<n>`: unique in this process (`n` counts), and telling this process apart from
    /// any other, also from an earlier process with the same PID (see ``processTag``).
    func temporaryPath(beside final: String) -> String {
        let n = tempCounter.withLock {
            $0 += 1
            return $0
        }
        return final + ".tmp-\(Self.processTag)-\(n)"
    }

    /// This process's random instance ID: 64 bits in hex, drawn once per process.
    static let processInstance: String = {
        let digits = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }()

    /// `<pid>-<instance>`: the owner part of the names of this process's temporary files and staged blocks.
    ///
    /// The PID alone does not tell processes apart over time: a server restarted in a container is PID 1 again,
    /// and took its predecessor's files for its own. The instance ID does; the PID stays so that a process can
    /// tell whether the writer of another process's file may still be alive (see
    /// ``removeStaleTemporaryFiles(under:)``).
    static let processTag = "\(getpid())-\(processInstance)"

    /// Creates the blob's parent directories; fails when the container is missing.
    func prepareParent(of name: String) throws { try ensureParent(of: name) }

    /// Opens a blob's file read-only: `nil` when the blob does not exist (yet), `.containerNotFound` when the buffer
    /// does not. The caller closes the descriptor.
    func openExisting(_ name: String) throws -> (fd: Int32, path: String)? {
        try BlobName.validate(name)
        let path = directory + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR {
                guard try containerExistsSync() else {
                    throw BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)")
                }
                return nil
            }
            throw ioError("open", path)
        }
        guard Self.isBlobFile(fd) else {  // a folder of blobs is no blob
            close(fd)
            return nil
        }
        return (fd, path)
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        // Reading a blob may wait for the disk (a blob written with direct I/O is not in the page cache): on the
        // blocking pool, not on a cooperative thread.
        try await BlockingPool.shared.run { try self.getBlocking(name) }
    }

    /// Waits for a blob (``waitForBlob(_:upTo:)``), then reads it.
    public func awaitBlob(_ name: String, upTo wait: Duration) async throws -> BlobWait {
        if let blob = try await get(name) { return .found(blob) }
        guard try await waitForBlob(name, upTo: wait), let blob = try await get(name) else { return .waited }
        return .found(blob)
    }

    /// Waits up to `wait` for a blob that is not there yet, looking at its path every 5 ms (an `access` call; a blob
    /// appears whole, by a rename, whichever process writes it); stops waiting once the buffer ended (`.bufferend`:
    /// no blob comes any more). What the local readers and the data plane's long poll wait with.
    ///
    /// - Returns: Whether the blob appeared.
    public func waitForBlob(_ name: String, upTo wait: Duration) async throws -> Bool {
        try BlobName.validate(name)
        let path = directory + "/" + name
        let end = directory + "/" + BufferBlobNames.end
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: Self.blobLookInterval)
            if access(path, F_OK) == 0 { return true }
            if name != BufferBlobNames.end && access(end, F_OK) == 0 { return false }
        }
        return false
    }

    /// How often a waiting reader looks for the blob it waits for.
    static let blobLookInterval = Duration.milliseconds(5)

    func getBlocking(_ name: String) throws -> StoredBlob? {
        guard let (fd, path) = try openExisting(name) else { return nil }
        defer { close(fd) }
        let (metadata, dataLength) = try readTrailer(fd: fd, name: name)
        if dataLength > Self.mapThreshold {
            guard let map = mmap(nil, dataLength, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0), map != MAP_FAILED else {
                throw ioError("mmap", path)
            }
            return StoredBlob(
                bytes: UnsafeRawBufferPointer(start: map, count: dataLength),
                metadata: metadata,
                mapped: true,
                deallocate: .munmap(dataLength)
            )
        }
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(dataLength, 1), alignment: 16)
        do {
            if dataLength > 0 {
                try FileDescriptorOps.preadExactly(
                    fd,
                    into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<dataLength]),
                    at: 0
                )
            }
        } catch {
            memory.deallocate()
            throw BlobStoreError(.io, "cannot read blob \(name): \(error)")
        }
        return StoredBlob(
            bytes: UnsafeRawBufferPointer(rebasing: memory[0..<dataLength]),
            metadata: metadata,
            mapped: false,
            deallocate: .free
        )
    }

    public func head(_ name: String) async throws -> BlobMetadata? {
        try await inspect(name)?.metadata
    }

    /// The blob's trailer: its metadata, and its length from the file's size.
    public func inspect(_ name: String) async throws -> BlobStat? {
        try BlobName.validate(name)
        let path = directory + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw ioError("open", path)
        }
        defer { close(fd) }
        guard Self.isBlobFile(fd) else { return nil }
        let (metadata, length) = try readTrailer(fd: fd, name: name)
        return BlobStat(metadata: metadata, storedLength: length)
    }

    func readTrailer(fd: Int32, name: String) throws -> (BlobMetadata, Int) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("fstat", name) }
        let size = Int(st.st_size)
        let corrupt = BlobStoreError(.corrupt, "blob \(name) is damaged: its metadata trailer is missing or torn")
        guard size >= 12 else { throw corrupt }
        var tail = [UInt8](repeating: 0, count: 12)
        do {
            try tail.withUnsafeMutableBytes { try FileDescriptorOps.preadExactly(fd, into: $0, at: Int64(size - 12)) }
        } catch { throw corrupt }
        guard Array(tail[4..<12]) == Self.magic else { throw corrupt }
        let jsonLength = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
        guard jsonLength <= size - 12 else { throw corrupt }
        var json = [UInt8](repeating: 0, count: jsonLength)
        do {
            try json.withUnsafeMutableBytes {
                try FileDescriptorOps.preadExactly(fd, into: $0, at: Int64(size - 12 - jsonLength))
            }
        } catch { throw corrupt }
        guard let metadata = try? BlobMetadata.decodeJSON(json) else { throw corrupt }
        return (metadata, size - 12 - jsonLength)
    }

    public func sync() async throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open", directory) }
        defer { close(fd) }
        guard tyger_syncfs(fd) == 0 else { throw ioError("syncfs", directory) }
        // Directory entries: syncfs covers them on ext4/xfs, but fsync the directories too, as POSIX asks.
        let dirs = createdDirectories.withLock { Array($0) }
        for dir in dirs {
            let path = dir.isEmpty ? directory : directory + "/" + dir
            let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                fsync(dfd)
                close(dfd)
            }
        }
        fsync(fd)
    }

    public func acquireWriterLease() async throws -> any WriterLease {
        let path = directory + "/" + Self.lockName
        var fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            // The first writer creates the lock file already locked (a locked temporary file moved into place): a
            // reader probing `writerState()` must never find an unlocked lock file of a starting writer, which would
            // read as a writer that is gone.
            let temp = temporaryPath(beside: path)
            let tfd = open(temp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o644)
            guard tfd >= 0 else {
                if errno == ENOENT {
                    throw BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)")
                }
                throw ioError("create", temp)
            }
            if tyger_flock(tfd, 1, 1) == 0 && tyger_rename_noreplace(AT_FDCWD, temp, AT_FDCWD, path) == 0 {
                return FileLease(fd: tfd)
            }
            unlink(temp)
            close(tfd)
            fd = open(path, O_RDWR | O_CLOEXEC)  // another writer created it first
        }
        guard fd >= 0 else {
            if errno == ENOENT { throw BlobStoreError(.containerNotFound, "the buffer does not exist: \(directory)") }
            throw ioError("open", path)
        }
        // A reader probing `writerState()` holds a shared lock for a moment: retry briefly before concluding that
        // another writer holds the lease, or a polling reader could make a starting writer fail.
        // (tyger_flock retries EINTR itself.)
        var attempts = 0
        while tyger_flock(fd, 1, 1) != 0 {
            let e = errno
            if e == EWOULDBLOCK && attempts < 50 {
                attempts += 1
                try? await Task.sleep(for: .milliseconds(2))
                continue
            }
            close(fd)
            if e == EWOULDBLOCK { throw BlobStoreError(.leaseHeld, "another writer is writing this buffer") }
            errno = e
            throw ioError("flock", path)
        }
        return FileLease(fd: fd)
    }

    public func writerState() async throws -> WriterState {
        let state = currentWriterState()
        if state == .gone { removeDeadWriterLeftovers(writerState: state) }
        return state
    }

    /// ``writerState()`` without suspending: two non-blocking system calls, callable from any thread.
    public func currentWriterState() -> WriterState {
        let path = directory + "/" + Self.lockName
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? .notStarted : .unknown }
        defer { close(fd) }
        if tyger_flock(fd, 0, 1) == 0 { return .gone }  // closing the descriptor drops our shared lock
        return errno == EWOULDBLOCK ? .active : .unknown
    }

    func ioError(_ operation: String, _ path: String) -> BlobStoreError {
        BlobStoreError(.io, "\(operation) \(path): \(String(cString: strerror(errno)))")
    }

    private final class FileLease: WriterLease {
        private let fd: Mutex<Int32>
        init(fd: Int32) { self.fd = Mutex(fd) }
        func release() async {
            fd.withLock {
                if $0 >= 0 { close($0) }
                $0 = -1
            }
        }
        deinit { fd.withLock { if $0 >= 0 { close($0) } } }
    }
}

/// A byte region handed to the blocking pool for the duration of one awaited call.
struct SendableRegion: @unchecked Sendable {
    // @unchecked: the caller keeps the memory alive and unchanged until the awaited call returns.
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}
