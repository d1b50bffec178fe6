/// Buffer identifiers as upstream makes them (`Buffers/UniqueId.cs`): 16 random bytes in lowercase base32
/// (alphabet `abcdefghijklmnopqrstuvwxyz234567`, no padding), always 26 characters.
public enum BufferID {
    /// The number of characters of every generated ID.
    public static let length = 26

    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// Generates a new random buffer ID.
    ///
    /// - Returns: A 26-character lowercase base32 string.
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    /// Generates a buffer ID from a given random number generator.
    ///
    /// - Parameter generator: The source of the 16 random bytes.
    /// - Returns: A 26-character lowercase base32 string.
    public static func generate(using generator: inout some RandomNumberGenerator) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        return encode(bytes)
    }

    /// Encodes bytes as unpadded lowercase base32.
    ///
    /// - Parameter bytes: The bytes to encode.
    /// - Returns: The encoded string; 16 bytes give 26 characters.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
