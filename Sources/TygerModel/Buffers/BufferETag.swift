public import Foundation

/// Computes buffer ETags.
///
/// The hashed fields and their order follow upstream (`Model/Model.cs`): the ID, `isSoftDeleted` as `True`/`False`,
/// `expiresAt` as Unix milliseconds (8 bytes little-endian, 0 when absent), then the tags sorted by key as
/// `key 0x00 value 0x00` (`0xFF` when there are none). Empty strings hash as `0xFF`. The hash function is
/// ``StableHash64`` rather than xxHash3; ETags are opaque decimal strings, so clients cannot tell the difference.
/// `createdAt` and `location` are immutable and not hashed, as upstream.
public enum BufferETag {
    /// Computes the ETag of a buffer's current state.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - isSoftDeleted: Whether the buffer is soft-deleted.
    ///   - expiresAt: The expiry time, if any.
    ///   - tags: The tags.
    /// - Returns: The ETag as a decimal string.
    public static func compute(id: String, isSoftDeleted: Bool, expiresAt: Date?, tags: [String: String]) -> String {
        var hash = StableHash64()
        hash.combine(string: id)
        hash.combine(string: isSoftDeleted ? "True" : "False")
        let millis = expiresAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0
        hash.combine(int64: millis)
        if tags.isEmpty {
            hash.combine(byte: 0xFF)
        } else {
            for key in tags.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                hash.combine(string: key)
                hash.combine(string: tags[key]!)  // key comes from tags.keys
            }
        }
        return String(hash.finalize())
    }
}

extension Buffer {
    /// The ETag of this buffer's current state, computed with ``BufferETag/compute(id:isSoftDeleted:expiresAt:tags:)``.
    public var computedETag: String {
        BufferETag.compute(id: id, isSoftDeleted: isSoftDeleted, expiresAt: expiresAt, tags: tags ?? [:])
    }
}
