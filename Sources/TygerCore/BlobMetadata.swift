/// Metadata stored with a blob: its Content-MD5 (upstream) and user metadata (`x-ms-meta-*`).
///
/// The native format keeps its checksum, encoding and raw length in user metadata, so any store that can keep
/// Azure-style metadata can keep a native buffer.
public struct BlobMetadata: Equatable, Sendable {
    /// Base64 MD5 of the stored bytes, when known.
    public var contentMD5: String?
    /// User metadata, keys lowercase, without the `x-ms-meta-` prefix.
    public var properties: [String: String]

    public init(contentMD5: String? = nil, properties: [String: String] = [:]) {
        self.contentMD5 = contentMD5
        self.properties = properties
    }

    /// Metadata keys of the buffer formats.
    public enum Key {
        /// Upstream's `x-ms-meta-cumulative_hash_chain`.
        public static let hashChain = "cumulative_hash_chain"
        /// Native: CRC32C of the stored bytes, 8 hex digits.
        public static let crc32c = "crc32c"
        /// Native: `raw` or `deflate`.
        public static let encoding = "encoding"
        /// Native: length of the decoded bytes.
        public static let rawLength = "raw_length"
    }

    public var hashChain: String? {
        get { properties[Key.hashChain] }
        set { properties[Key.hashChain] = newValue }
    }

    /// Serializes the metadata as a flat JSON object (`content-md5` plus `meta:`-prefixed keys).
    public func encodedJSON() -> [UInt8] {
        var object: [String: String] = [:]
        if let contentMD5 { object["content-md5"] = contentMD5 }
        for (k, v) in properties { object["meta:" + k] = v }
        return Array(MiniJSON.encode(object).utf8)
    }

    /// Parses what `encodedJSON()` wrote.
    ///
    /// - Throws: `TygerCoreError` `.corruptMetadata` when the bytes are not such an object.
    public static func decodeJSON(_ bytes: [UInt8]) throws -> BlobMetadata {
        guard let object = try? MiniJSON.parseObject(bytes) else {
            throw TygerCoreError(.corruptMetadata, "blob metadata is not valid JSON")
        }
        var metadata = BlobMetadata()
        for (k, v) in object {
            if k == "content-md5" {
                metadata.contentMD5 = v
            } else if k.hasPrefix("meta:") {
                metadata.properties[String(k.dropFirst(5))] = v
            }
        }
        return metadata
    }
}
