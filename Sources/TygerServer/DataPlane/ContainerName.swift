import TygerCore
import TygerStorage

/// Names on the data plane: container (buffer) IDs and blob paths as they appear in request paths.
public enum ContainerName {
    /// Whether `id` is a valid container ID: 3 to 63 ASCII letters and digits (upstream's `^[a-zA-Z0-9]{3,63}$`).
    /// This is also what keeps an ID from escaping the buffers directory.
    public static func isValid(_ id: some StringProtocol) -> Bool {
        let bytes = id.utf8
        return (3...63).contains(bytes.count)
            && bytes.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
            }
    }
}

/// The container and blob a data-plane request path addresses.
struct DataPlanePath: Equatable {
    var containerId: String
    /// The decoded blob name, or `nil` for container operations.
    var blobName: String?

    /// Parses a raw (still percent-encoded) request path `/containers/<id>[/<blob path>]`.
    ///
    /// - Throws: `APIError` `.invalidContainerName` or `.invalidBlobName`. A percent-encoded `/` (`%2F`), NUL or
    ///   invalid UTF-8 in a segment, an empty, `.` or `..` segment (encoded or not) and characters outside BlobName's
    ///   set are all refused, so a name can never leave its container's directory.
    static func parse(_ rawPath: String) throws -> DataPlanePath {
        let prefix = "/containers/"
        guard rawPath.hasPrefix(prefix) else { throw APIError.invalidRoute }
        let rest = rawPath.dropFirst(prefix.count)
        let id: Substring
        let blob: Substring?
        if let slash = rest.firstIndex(of: "/") {
            id = rest[..<slash]
            blob = rest[rest.index(after: slash)...]
        } else {
            id = rest
            blob = nil
        }
        guard ContainerName.isValid(id) else { throw APIError.invalidContainerName }
        guard let blob else { return DataPlanePath(containerId: String(id), blobName: nil) }
        var segments: [String] = []
        for raw in blob.split(separator: "/", omittingEmptySubsequences: false) {
            guard let decoded = percentDecode(raw), !decoded.contains("/"), !decoded.contains("\0") else {
                throw APIError.invalidBlobName
            }
            segments.append(decoded)
        }
        let name = segments.joined(separator: "/")
        // Each segment becomes a file or directory name (255 bytes at most on Linux); Azure caps names at 1024.
        guard segments.allSatisfy({ $0.utf8.count <= 255 }), name.utf8.count <= 1024 else {
            throw APIError.invalidBlobName
        }
        do {
            try BlobName.validate(name)
        } catch {
            throw APIError.invalidBlobName
        }
        return DataPlanePath(containerId: String(id), blobName: name)
    }

    private static func percentDecode(_ s: Substring) -> String? { TextEncoding.percentDecoded(s) }
}
