import Glibc

/// A small, seedable random number generator (SplitMix64), so failures can be replayed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Test payloads.
public enum Payload {
    /// `count` incompressible bytes from `seed`.
    public static func random(count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = rng.next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    /// `count` bytes of text-like data (words from a small vocabulary, in lines) that deflate shrinks a lot.
    public static func compressible(count: Int, seed: UInt64) -> [UInt8] {
        let words = [
            "tyger", "buffer", "blob", "stream", "chunk", "ring", "hash", "chain", "crc", "deflate", "data", "path",
        ]
        var rng = SeededGenerator(seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        var line = 0
        while out.count < count {
            line += 1
            out += Array("\(line): ".utf8)
            for _ in 0..<8 {
                out += Array(words[Int(rng.next() % UInt64(words.count))].utf8)
                out.append(0x20)
            }
            out.append(0x0A)
        }
        return Array(out.prefix(count))
    }

    /// The `tyger buffer gen` stream from `offset`, computed from its definition (`':' + i % 64`), independently of
    /// the code under test.
    public static func generated(count: Int, offset: Int64 = 0) -> [UInt8] {
        (0..<count).map { UInt8(0x3A + Int((offset + Int64($0)) % 64)) }
    }
}

/// Describes how two byte arrays differ, or returns `nil` when they are equal (compared a word at a time first).
public func mismatch(_ a: [UInt8], _ b: [UInt8]) -> String? {
    let common = min(a.count, b.count)
    let equalPrefix = a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            common == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, common) == 0
        }
    }
    if equalPrefix {
        return a.count == b.count ? nil : "counts differ: \(a.count) vs \(b.count) (equal for the first \(common))"
    }
    let i = (0..<common).first { a[$0] != b[$0] } ?? common
    return "first difference at index \(i): \(a[i]) vs \(b[i]) (counts \(a.count) and \(b.count))"
}

/// Describes how two sequences differ, or returns `nil` when they are equal.
///
/// Use `#expect(mismatch(a, b) == nil)` instead of `#expect(a == b)` for large arrays: on failure the testing library
/// diffs the operands of `==`, which takes quadratic time on big inputs.
public func mismatch<A: Collection, B: Collection>(_ a: A, _ b: B) -> String?
where A.Element == B.Element, A.Element: Equatable {
    var i = 0
    var ia = a.startIndex
    var ib = b.startIndex
    while ia != a.endIndex, ib != b.endIndex {
        if a[ia] != b[ib] {
            return "first difference at index \(i): \(a[ia]) vs \(b[ib]) (counts \(a.count) and \(b.count))"
        }
        a.formIndex(after: &ia)
        b.formIndex(after: &ib)
        i += 1
    }
    if ia == a.endIndex, ib == b.endIndex { return nil }
    return "counts differ: \(a.count) vs \(b.count) (equal for the first \(i))"
}
