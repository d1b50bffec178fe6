/// A stable, seedless 64-bit hash used for ETags.
///
/// Upstream Tyger uses xxHash3-64; ETags are opaque to clients, so this project uses FNV-1a 64 over the same
/// field layout followed by the `splitmix64` finalizer (to spread the low-entropy FNV output over all bits). The
/// value is stable across processes, platforms and releases, which matters because ETags survive restarts.
struct StableHash64 {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325

    init() {}

    mutating func combine(byte: UInt8) {
        state ^= UInt64(byte)
        state &*= 0x0000_0100_0000_01b3
    }

    mutating func combine(bytes: some Sequence<UInt8>) {
        for b in bytes { combine(byte: b) }
    }

    /// Hashes a string as its UTF-8 bytes, or the single byte `0xFF` when empty, then a `0x00` separator.
    mutating func combine(string: String) {
        if string.isEmpty {
            combine(byte: 0xFF)
        } else {
            combine(bytes: string.utf8)
        }
        combine(byte: 0)
    }

    /// Hashes an integer as 8 little-endian bytes.
    mutating func combine(int64 value: Int64) {
        var v = UInt64(bitPattern: value)
        for _ in 0..<8 {
            combine(byte: UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    func finalize() -> UInt64 {
        var z = state &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
