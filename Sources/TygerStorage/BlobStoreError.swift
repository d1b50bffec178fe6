public import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// The error thrown by blob stores.
public struct BlobStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value: Hashable, Sendable {
            case alreadyExists, containerNotFound, containerAlreadyExists, invalidName, leaseHeld, leaseLost, corrupt,
                io, noSpace, blockNotFound
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// The blob exists; blobs are write-once.
        public static let alreadyExists = Code(.alreadyExists)
        /// The buffer (container) does not exist.
        public static let containerNotFound = Code(.containerNotFound)
        /// The buffer (container) already exists and cannot be created again.
        public static let containerAlreadyExists = Code(.containerAlreadyExists)
        /// The blob name is not acceptable (traversal, absolute, odd characters).
        public static let invalidName = Code(.invalidName)
        /// Another writer holds the buffer's writer lease.
        public static let leaseHeld = Code(.leaseHeld)
        /// The writer's lease ran out or ended before it finished: the buffer is abandoned.
        public static let leaseLost = Code(.leaseLost)
        /// The stored form of a blob is damaged (torn trailer, bad metadata).
        public static let corrupt = Code(.corrupt)
        /// A file-system call failed.
        public static let io = Code(.io)
        /// The file system is full (`ENOSPC`) or the user's quota is exhausted (`EDQUOT`).
        public static let noSpace = Code(.noSpace)
        /// A block that a block list names is not staged (never staged, or removed by a commit or a restart).
        public static let blockNotFound = Code(.blockNotFound)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The error for a failed write of blob `name`: `.noSpace` when the disk is full, else `.io`.
    ///
    /// - Parameters:
    ///   - error: The failed system call.
    ///   - name: The blob being written.
    /// - Returns: The error to throw.
    public static func writeFailed(_ error: TygerIOError, blob name: String) -> BlobStoreError {
        if error.errno == ENOSPC || error.errno == EDQUOT {
            return BlobStoreError(.noSpace, "cannot write blob \(name): disk full (\(error.message))")
        }
        return BlobStoreError(.io, "cannot write blob \(name): \(error.message)")
    }
}

/// Blob names the stores accept: `.bufferstart`, `.bufferend`, or slash-separated segments of `[A-Za-z0-9._-]`
/// with no empty, `.` or `..` segment. This is what keeps a name from escaping its container.
public enum BlobName {
    /// Checks `name`.
    /// - Throws: `BlobStoreError` `.invalidName`.
    public static func validate(_ name: String) throws {
        let segments = name.split(separator: "/", omittingEmptySubsequences: false)
        let ok =
            !name.isEmpty && name.utf8.count <= 1024
            && segments.allSatisfy { segment in
                !segment.isEmpty && segment != "." && segment != ".."
                    && segment.utf8.allSatisfy { c in
                        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E
                            || c == 0x5F || c == 0x2D
                    }
            }
        guard ok else { throw BlobStoreError(.invalidName, "invalid blob name '\(name)'") }
    }
}
