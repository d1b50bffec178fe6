/// A coding key for any string, used to list the keys an object really has.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws when the object being decoded has keys outside `allowed` (upstream decodes strictly too).
    ///
    /// - Parameters:
    ///   - allowed: The keys the object may have.
    ///   - what: How to name the object in the message (`codespec`, `resources.requests`).
    /// - Throws: `TygerRunEngineError` `.invalidInput` naming the unknown fields and the allowed ones.
    func rejectUnknownKeys(_ allowed: Set<String>, in what: String) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else {
            let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw TygerRunEngineError.invalid(
                "unknown field\(unknown.count == 1 ? "" : "s") \(list) in \(what); allowed fields are: "
                    + allowed.sorted().joined(separator: ", "))
        }
    }
}

extension CodingUserInfoKey {
    /// Set to `true` to require `kind` on codespecs (JSON bodies); YAML files default it to `job`.
    static let tygerRequireCodespecKind = CodingUserInfoKey(rawValue: "tyger.requireCodespecKind")!  // a valid key
}
