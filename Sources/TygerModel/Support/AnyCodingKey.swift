import Foundation

/// A coding key for any string, used to detect unrecognized properties.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension Decoder {
    /// Throws when the object being decoded has keys outside `allowed`: every strict wire type decodes through this.
    ///
    /// - Parameters:
    ///   - allowed: The keys the object may have.
    ///   - what: How to name the object (`codespec`, `resources.requests`): the message then names the unknown
    ///     fields and lists the allowed ones (`unknown field 'x' in codespec; allowed fields are: ...`). Without it
    ///     the message is upstream's: `Object contains unrecognized properties 'x', 'y'.`
    /// - Throws: `DecodingError.dataCorrupted` at the object's coding path.
    func rejectUnknownKeys(_ allowed: Set<String>, in what: String? = nil) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
        guard !unknown.isEmpty else { return }
        let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
        let message =
            if let what {
                "unknown field\(unknown.count == 1 ? "" : "s") \(list) in \(what); allowed fields are: "
                    + allowed.sorted().joined(separator: ", ")
            } else {
                "Object contains unrecognized properties \(list)."
            }
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: message))
    }
}

extension KeyedDecodingContainer {
    /// Decodes an optional RFC 3339 date-time string.
    func decodeTimestampIfPresent(forKey key: Key) throws -> Date? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key,
                in: self,
                debugDescription: "The value '\(text.prefix(64))' is not a valid RFC 3339 date-time."
            )
        }
        return date
    }
}
