/// A single byte range from a `Range` or `x-ms-range` header (`bytes=a-b`, `bytes=a-` or `bytes=-n`).
struct ByteRange: Equatable {
    enum Spec: Equatable {
        /// `bytes=a-b` (b inclusive) or `bytes=a-` (b = nil).
        case from(Int, through: Int?)
        /// `bytes=-n`: the last n bytes.
        case suffix(Int)
    }

    var spec: Spec

    /// Parses the header value.
    ///
    /// - Returns: The range, or `nil` when the value is not one well-formed byte range (several ranges, other units,
    ///   `b < a`, non-digits).
    static func parse(_ value: String) -> ByteRange? {
        let trimmed = value.trimmingPrefix(while: { $0 == " " })
        guard trimmed.hasPrefix("bytes=") else { return nil }
        let body = trimmed.dropFirst("bytes=".count)
        guard !body.contains(","), let dash = body.firstIndex(of: "-") else { return nil }
        let first = body[..<dash]
        let last = body[body.index(after: dash)...]
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 18, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(s)
        }
        if first.isEmpty {
            guard let n = number(last), n > 0 else { return nil }
            return ByteRange(spec: .suffix(n))
        }
        guard let a = number(first) else { return nil }
        if last.isEmpty { return ByteRange(spec: .from(a, through: nil)) }
        guard let b = number(last), b >= a else { return nil }
        return ByteRange(spec: .from(a, through: b))
    }

    /// The inclusive byte positions this range selects in a blob of `length` bytes.
    ///
    /// - Returns: The positions, clipped to the blob, or `nil` when the range is not satisfiable (the blob is empty,
    ///   or the range starts at or past its end).
    func resolve(length: Int) -> ClosedRange<Int>? {
        guard length > 0 else { return nil }
        switch spec {
        case .from(let a, let b):
            guard a < length else { return nil }
            return a...min(b ?? (length - 1), length - 1)
        case .suffix(let n):
            return max(0, length - n)...(length - 1)
        }
    }
}
