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
    /// Throws when the current JSON object has a property outside `known`.
    ///
    /// The message matches upstream's strict models: `Object contains unrecognized properties 'x', 'y'.`
    func rejectUnknownProperties(known: Set<String>) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath, debugDescription: "Object contains unrecognized properties \(list)."))
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes an optional RFC 3339 date-time string.
    func decodeTimestampIfPresent(forKey key: Key) throws -> Date? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "The value '\(text.prefix(64))' is not a valid RFC 3339 date-time.")
        }
        return date
    }
}
