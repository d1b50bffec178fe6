/// Names the data blobs of a buffer, compatibly with upstream Tyger.
///
/// The rule keeps lexical order equal to numeric order, puts at most 4096 entries in any directory, and
/// keeps paths short for small buffers: the low 12 bits name the file, and the remaining bits are split into
/// a "root" (their bit length) and as many one-byte sub-folders as that length needs.
///
/// ```swift
/// BlobPath.name(for: 0)          // "00/000"
/// BlobPath.name(for: 0x2000)     // "02/00/000"
/// BlobPath.name(for: 0x10102345) // "11/01/02/345"
/// ```
public enum BlobPath {
    /// Returns the blob path of data blob `number`.
    ///
    /// - Parameter number: The blob number, starting at 0.
    /// - Returns: The path relative to the buffer's container, with `/` separators and uppercase hex.
    /// - Precondition: `number >= 0`.
    public static func name(for number: Int64) -> String {
        precondition(number >= 0, "blob number must not be negative: \(number)")
        let file = UInt64(number) & 0xFFF
        var m = UInt64(number) >> 12
        let root = m == 0 ? 0 : 64 - m.leadingZeroBitCount
        var path = hex(UInt64(root), width: 2)
        if root > 1 {
            m &= ~(UInt64(1) << UInt64(root - 1))
            let subCount = (root - 2) / 8 + 1
            for i in stride(from: subCount - 1, through: 0, by: -1) {
                path += "/" + hex((m >> UInt64(i * 8)) & 0xFF, width: 2)
            }
        }
        path += "/" + hex(file, width: 3)
        return path
    }

    /// The number of the data blob named `name`: the inverse of ``name(for:)``.
    ///
    /// - Returns: The number, or `nil` when `name` is not a data blob's name.
    public static func number(of name: String) -> Int64? {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, let root = UInt64(parts[0], radix: 16), root <= 51,
            let file = UInt64(parts[parts.count - 1], radix: 16), file <= 0xFFF
        else { return nil }
        var high: UInt64 = root == 0 ? 0 : 1
        for part in parts.dropFirst().dropLast() {
            guard let byte = UInt64(part, radix: 16), byte <= 0xFF else { return nil }
            high = high << 8 | byte
        }
        if root > 1 { high = UInt64(1) << (root - 1) | high & ((UInt64(1) << (root - 1)) - 1) }
        let number = Int64(high << 12 | file)
        return name == Self.name(for: number) ? number : nil
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
