import Foundation

extension Run {
    /// The ETag of this run's current state: an opaque decimal string that changes when the tags or the status
    /// change (upstream's `TestTagRun` and `TestRunETagChanges`), as ``BufferETag`` does for buffers.
    ///
    /// Hashed: the ID, the status, the status reason, the running count, the finish time (Unix milliseconds) and the
    /// tags sorted by key. The job and the creation time never change after creation and are not hashed.
    public var computedETag: String {
        var hash = StableHash64()
        hash.combine(int64: id ?? 0)
        hash.combine(string: status?.rawValue ?? "")
        hash.combine(string: statusReason ?? "")
        hash.combine(int64: Int64(runningCount ?? -1))
        hash.combine(int64: finishedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0)
        let tags = tags ?? [:]
        if tags.isEmpty {
            hash.combine(byte: 0xFF)
        } else {
            for key in tags.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                hash.combine(string: key)
                hash.combine(string: tags[key] ?? "")
            }
        }
        return String(hash.finalize())
    }

    /// The run with ``eTag`` set to ``computedETag``.
    public var withComputedETag: Run {
        var copy = self
        copy.eTag = computedETag
        return copy
    }

    /// Whether an `If-Match` value lets a write of this run go ahead: absent, empty or `*` always match.
    public func matches(ifMatch: String?) -> Bool {
        guard let expected = ETagPrecondition.expected(fromIfMatch: ifMatch) else { return true }
        return expected == computedETag
    }
}
