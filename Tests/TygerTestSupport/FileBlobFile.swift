import Foundation

/// Reads and rewrites `FileBlobStore` blob files directly, from the documented layout: the blob's bytes at offset 0,
/// then the metadata as JSON, its length as UInt32 little-endian and the magic `TYGBLOB1`.
public enum FileBlobFile {
    /// The parts of one blob file.
    public struct Parts: Sendable {
        public var data: [UInt8]
        public var metadataJSON: [UInt8]

        /// The metadata object (`content-md5` and `meta:`-prefixed keys).
        public func metadata() throws -> [String: String] {
            guard let object = try JSONSerialization.jsonObject(with: Data(metadataJSON)) as? [String: String] else {
                throw TestSupportError("blob metadata is not a flat JSON object of strings")
            }
            return object
        }

        public init(data: [UInt8], metadataJSON: [UInt8]) {
            self.data = data
            self.metadataJSON = metadataJSON
        }

        /// The same blob with a new metadata object.
        public func with(metadata: [String: String]) throws -> Parts {
            let json = try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys])
            return Parts(data: data, metadataJSON: [UInt8](json))
        }
    }

    public static let magic = Array("TYGBLOB1".utf8)

    /// Splits a blob file into its parts.
    public static func read(_ path: String) throws -> Parts {
        let file = try TestFiles.read(path)
        guard file.count >= 12, Array(file.suffix(8)) == magic else {
            throw TestSupportError("\(path): no TYGBLOB1 trailer")
        }
        let l = file.count - 12
        let jsonLength = Int(file[l]) | Int(file[l + 1]) << 8 | Int(file[l + 2]) << 16 | Int(file[l + 3]) << 24
        guard jsonLength <= l else { throw TestSupportError("\(path): metadata length \(jsonLength) too large") }
        return Parts(data: Array(file[0..<(l - jsonLength)]), metadataJSON: Array(file[(l - jsonLength)..<l]))
    }

    /// Writes a blob file from its parts (replacing any file there).
    public static func write(_ parts: Parts, to path: String) throws {
        let n = UInt32(parts.metadataJSON.count)
        let length = [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        try TestFiles.write(parts.data + parts.metadataJSON + length + magic, to: path)
    }
}
