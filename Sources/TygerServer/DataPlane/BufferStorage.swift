public import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// The buffers of a data directory: `<root>/<containerId>/` is a `FileBlobStore`, so
/// `tyger buffer read file://<root>/<id>` reads what the data plane wrote, and the other way round.
///
/// The control plane uses this directly (in process) to create and delete buffers; the data plane serves it.
public struct BufferStorage: Sendable {
    /// The directory holding one directory per buffer.
    public let root: String

    /// Buffers under `root` (created on first use).
    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// The directory of a buffer.
    /// - Precondition: `containerId` is a valid container name.
    public func directory(of containerId: String) -> String {
        precondition(ContainerName.isValid(containerId), "invalid container ID '\(containerId)'")
        return root + "/" + containerId
    }

    /// The blob store of a buffer (which may not exist).
    /// - Precondition: `containerId` is a valid container name.
    public func store(for containerId: String) -> FileBlobStore {
        FileBlobStore(directory: directory(of: containerId))
    }

    /// Whether a buffer exists.
    public func exists(_ containerId: String) -> Bool {
        guard ContainerName.isValid(containerId) else { return false }
        var st = stat()
        return stat(directory(of: containerId), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a buffer's directory.
    ///
    /// - Throws: `BlobStoreError` `.invalidName` for an invalid ID, `.containerAlreadyExists` when it exists, `.io`.
    public func create(_ containerId: String) throws {
        guard ContainerName.isValid(containerId) else {
            throw BlobStoreError(.invalidName, "invalid container ID '\(containerId)'")
        }
        try ensureRoot()
        let path = directory(of: containerId)
        if mkdir(path, 0o755) != 0 {
            if errno == EEXIST { throw BlobStoreError(.containerAlreadyExists, "buffer \(containerId) already exists") }
            throw BlobStoreError(.io, "mkdir \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Deletes a buffer and all its blobs.
    ///
    /// - Throws: `BlobStoreError` `.invalidName`, `.containerNotFound`, `.io`.
    public func delete(_ containerId: String) throws {
        guard ContainerName.isValid(containerId) else {
            throw BlobStoreError(.invalidName, "invalid container ID '\(containerId)'")
        }
        try store(for: containerId).removeContainer()
    }

    /// Creates the root directory if missing.
    ///
    /// - Throws: `BlobStoreError` `.io`.
    public func ensureRoot() throws {
        var current = root.hasPrefix("/") ? "" : "."
        for part in root.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw BlobStoreError(.io, "mkdir \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}
