/// The on-storage formats a buffer can be written in.
///
/// `upstream` is the format of the original Tyger (version `0.3.0`: Content-MD5 per blob and a SHA-256 chain over
/// the MD5s); `native` is this project's fast format (CRC32C per blob, the same kind of chain over the CRCs, and
/// optional per-blob deflate). Readers read both; upstream readers refuse `native` with their version error.
public struct BufferFormat: Hashable, Sendable, CustomStringConvertible {
    /// The version string stored in `.bufferstart`.
    public let version: String

    /// Upstream Tyger's format, version `0.3.0`.
    public static let upstream = BufferFormat(version: "0.3.0")
    /// The native format: CRC32C checksums and optional compression.
    public static let native = BufferFormat(version: "native-1")

    /// All formats this build reads.
    public static let all: [BufferFormat] = [.native, .upstream]

    /// Parses a `--format` value: `native`, `native-1`, `upstream` or `0.3.0`.
    public init?(name: String) {
        switch name.lowercased() {
        case "native", BufferFormat.native.version: self = .native
        case "upstream", "0.3.0", "0.3": self = .upstream
        default: return nil
        }
    }

    private init(version: String) { self.version = version }

    public var description: String { version }
}

/// Well-known blob names and metadata keys of the buffer format.
public enum BufferBlobNames {
    /// The blob that starts a buffer; written before any data blob.
    public static let start = ".bufferstart"
    /// The blob that ends a buffer: `{"status":"complete"}` or `{"status":"failed"}`.
    public static let end = ".bufferend"
}

/// The terminal status written in `.bufferend`.
public enum BufferEndStatus: String, Sendable, Codable {
    case complete
    case failed
}

/// The JSON document stored in `.bufferstart`.
///
/// Upstream writes exactly `{"version":"0.3.0"}`; the native format adds the checksum and codec names.
public struct BufferStartMetadata: Equatable, Sendable {
    public var format: BufferFormat
    /// The codec of the native format's blobs (`deflate` or `none`); `nil` for upstream.
    public var codec: String?
    /// The native writer's compression level (`fast`, `best`) and block size, kept so that a resumed write cuts and
    /// compresses its blocks as the interrupted one did; `nil` in buffers written before they were kept, and upstream.
    public var level: String?
    public var blockSize: Int?

    public init(format: BufferFormat, codec: String? = nil, level: String? = nil, blockSize: Int? = nil) {
        self.format = format
        self.codec = codec
        self.level = level
        self.blockSize = blockSize
    }

    /// Encodes the document; upstream's bytes are exactly `{"version":"0.3.0"}`.
    public func encoded() -> [UInt8] {
        if format == .upstream { return Array(#"{"version":"0.3.0"}"#.utf8) }
        var json = #"{"version":"\#(format.version)","checksum":"crc32c","codec":"\#(codec ?? "none")""#
        if let level { json += #","level":"\#(level)""# }
        if let blockSize { json += #","blockSize":\#(blockSize)"# }
        return Array((json + "}").utf8)
    }

    /// Decodes a `.bufferstart` document.
    ///
    /// - Throws: `TygerCoreError` with code `.unsupportedFormat` when the version is unknown, or
    ///   `.corruptMetadata` when the document is not a JSON object with a string `version`.
    public static func decode(_ bytes: [UInt8]) throws -> BufferStartMetadata {
        guard let object = try? MiniJSON.parseObject(bytes), let version = object["version"] else {
            throw TygerCoreError(.corruptMetadata, "the .bufferstart blob is not valid JSON with a version")
        }
        switch version {
        case BufferFormat.upstream.version: return BufferStartMetadata(format: .upstream)
        case BufferFormat.native.version:
            if let checksum = object["checksum"], checksum != "crc32c" {
                throw TygerCoreError(.unsupportedFormat, "unsupported checksum '\(checksum)' in buffer format")
            }
            return BufferStartMetadata(
                format: .native,
                codec: object["codec"] ?? "none",
                level: object["level"],
                blockSize: object["blockSize"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
            )
        default:
            throw TygerCoreError(
                .unsupportedFormat,
                "unsupported format buffer version '\(version)'. Expected one of \(BufferFormat.all.map(\.version))"
            )
        }
    }
}

/// Encodes and decodes `.bufferend`.
public enum BufferEndMetadata {
    /// The exact bytes upstream writes: `{"status":"complete"}` / `{"status":"failed"}`.
    public static func encoded(_ status: BufferEndStatus) -> [UInt8] {
        Array(#"{"status":"\#(status.rawValue)"}"#.utf8)
    }

    /// Decodes `.bufferend`; an unknown status is treated as complete, as upstream does.
    public static func decode(_ bytes: [UInt8]) -> BufferEndStatus {
        guard let object = try? MiniJSON.parseObject(bytes), let status = object["status"] else { return .complete }
        return BufferEndStatus(rawValue: status) ?? .complete
    }
}
