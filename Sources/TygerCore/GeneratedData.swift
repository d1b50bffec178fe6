private import CTygerNative

/// The deterministic data of `tyger buffer gen`: the 64-byte pattern `:;<=>?@A…xy` repeated, as upstream.
public enum GeneratedData {
    /// Fills `buffer` with the bytes found at `offset` of the generated stream.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer, streamOffset offset: Int64) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        tyger_gen_fill(base, buffer.count, UInt64(offset))
    }
}
