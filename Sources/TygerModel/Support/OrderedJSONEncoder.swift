public import Foundation

/// A JSON encoder that writes object keys in the order `encode(to:)` encodes them (declaration order for
/// synthesized and hand-written conformances), string-keyed dictionaries sorted by key (as Go prints maps), dates as
/// RFC 3339 (``RFC3339/format(_:)``), slashes unescaped, and, pretty-printed, indented by two spaces with `": "`
/// between keys and values and `[]`/`{}` for empty containers.
///
/// Foundation's `JSONEncoder` keeps objects in dictionaries: without `.sortedKeys` its key order is arbitrary (and
/// changes from run to run), and its pretty form writes `" : "`. People read the CLI's output, so it uses this one.
public struct OrderedJSONEncoder: Sendable {
    /// Whether to indent (two spaces, `": "`); compact otherwise.
    public var prettyPrinted: Bool

    /// Creates an encoder.
    ///
    /// - Parameter prettyPrinted: Whether to indent the output.
    public init(prettyPrinted: Bool = true) {
        self.prettyPrinted = prettyPrinted
    }

    /// Encodes `value` as UTF-8 JSON.
    ///
    /// - Parameter value: The value to encode.
    /// - Returns: The JSON bytes (no trailing newline).
    /// - Throws: `EncodingError.invalidValue` for a non-finite floating-point number, a value that encodes
    ///   nothing, and what `value`'s `encode(to:)` throws.
    public func encode(_ value: some Encodable) throws -> Data {
        let root = Slot()
        try root.encode(value, codingPath: [])
        guard let node = root.node else {
            throw EncodingError.invalidValue(
                value,
                .init(codingPath: [], debugDescription: "The value did not encode anything.")
            )
        }
        var out = ""
        Self.write(node, to: &out, indent: prettyPrinted ? "" : nil)
        return Data(out.utf8)
    }

    // MARK: - Output

    private static func write(_ node: Node, to out: inout String, indent: String?) {
        switch node {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): quote(s, to: &out)
        case .array(let items):
            guard !items.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            let inner = indent.map { $0 + "  " }
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if let inner { out += "\n" + inner }
                write(item, to: &out, indent: inner)
            }
            if let indent { out += "\n" + indent }
            out += "]"
        case .object(let entries):
            guard !entries.isEmpty else {
                out += "{}"
                return
            }
            out += "{"
            let inner = indent.map { $0 + "  " }
            for (i, (key, value)) in entries.enumerated() {
                if i > 0 { out += "," }
                if let inner { out += "\n" + inner }
                quote(key, to: &out)
                out += inner == nil ? ":" : ": "
                write(value, to: &out, indent: inner)
            }
            if let indent { out += "\n" + indent }
            out += "}"
        }
    }

    /// JSON string escaping: quotes, backslashes and control characters; everything else as UTF-8.
    private static func quote(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    // MARK: - Tree

    fileprivate indirect enum Node {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Node])
        case object([(String, Node)])
    }

    /// Where one value goes; containers fill it in place, so nested containers can be filled in any order.
    fileprivate final class Slot {
        enum Content {
            case empty
            case value(Node)
            case object(keys: [String], slots: [String: Slot])
            case array([Slot])
        }

        var content = Content.empty

        var node: Node? {
            switch content {
            case .empty: return nil
            case .value(let node): return node
            case .object(let keys, let slots):
                return .object(keys.map { ($0, slots[$0]!.node ?? .null) })  // every key has a slot
            case .array(let slots): return .array(slots.map { $0.node ?? .null })
            }
        }

        /// The slot for `key` of this object (made an object if it is not one yet).
        func child(_ key: String) -> Slot {
            var keys: [String] = []
            var slots: [String: Slot] = [:]
            if case .object(let k, let s) = content {
                keys = k
                slots = s
            }
            if let existing = slots[key] { return existing }
            let slot = Slot()
            keys.append(key)
            slots[key] = slot
            content = .object(keys: keys, slots: slots)
            return slot
        }

        func makeObject() {
            if case .object = content { return }
            content = .object(keys: [], slots: [:])
        }

        /// A new last element of this array (made an array if it is not one yet).
        func appended() -> Slot {
            var slots: [Slot] = []
            if case .array(let s) = content { slots = s }
            let slot = Slot()
            slots.append(slot)
            content = .array(slots)
            return slot
        }

        func makeArray() {
            if case .array = content { return }
            content = .array([])
        }

        var count: Int {
            switch content {
            case .array(let s): s.count
            case .object(let k, _): k.count
            default: 0
            }
        }

        func encode(_ value: some Encodable, codingPath: [any CodingKey]) throws {
            switch value {
            case let date as Date:
                content = .value(.string(RFC3339.format(date)))
            case let url as URL:
                content = .value(.string(url.absoluteString))
            case let data as Data:
                content = .value(.string(data.base64EncodedString()))
            case let map as [String: any Encodable]:
                // Go's order for maps: sorted by key, so the same value always prints the same.
                makeObject()
                for key in map.keys.sorted() {
                    try child(key).encode(map[key]!, codingPath: codingPath + [PathKey(key)])  // key of map
                }
            default:
                try value.encode(to: SlotEncoder(slot: self, codingPath: codingPath))
            }
        }

        func number<T: BinaryFloatingPoint & LosslessStringConvertible>(
            _ value: T,
            codingPath: [any CodingKey]
        ) throws {
            guard value.isFinite else {
                throw EncodingError.invalidValue(
                    value,
                    .init(codingPath: codingPath, debugDescription: "\(value) is not representable in JSON.")
                )
            }
            content = .value(.number(value.description))
        }
    }

    fileprivate struct PathKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ string: String) { stringValue = string }
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) {
            stringValue = String(intValue)
            self.intValue = intValue
        }
    }

    fileprivate struct SlotEncoder: Encoder {
        let slot: Slot
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            slot.makeObject()
            return KeyedEncodingContainer(KeyedSlotContainer<Key>(slot: slot, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            slot.makeArray()
            return UnkeyedSlotContainer(slot: slot, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            SingleSlotContainer(slot: slot, codingPath: codingPath)
        }
    }

    fileprivate struct KeyedSlotContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let slot: Slot
        let codingPath: [any CodingKey]

        private func child(_ key: Key) -> Slot { slot.child(key.stringValue) }

        mutating func encodeNil(forKey key: Key) throws { child(key).content = .value(.null) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { child(key).content = .value(.bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { child(key).content = .value(.string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws {
            try child(key).number(value, codingPath: codingPath + [key])
        }
        mutating func encode(_ value: Float, forKey key: Key) throws {
            try child(key).number(value, codingPath: codingPath + [key])
        }
        mutating func encode(_ value: Int, forKey key: Key) throws { child(key).content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { child(key).content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int16, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: Int32, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: Int64, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: UInt, forKey key: Key) throws { child(key).content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: UInt16, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: UInt32, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode(_ value: UInt64, forKey key: Key) throws {
            child(key).content = .value(.number("\(value)"))
        }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try child(key).encode(value, codingPath: codingPath + [key])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type,
            forKey key: Key
        ) -> KeyedEncodingContainer<NestedKey> {
            let nested = child(key)
            nested.makeObject()
            return KeyedEncodingContainer(KeyedSlotContainer<NestedKey>(slot: nested, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let nested = child(key)
            nested.makeArray()
            return UnkeyedSlotContainer(slot: nested, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder {
            SlotEncoder(slot: slot.child("super"), codingPath: codingPath + [PathKey("super")])
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            SlotEncoder(slot: child(key), codingPath: codingPath + [key])
        }
    }

    fileprivate struct UnkeyedSlotContainer: UnkeyedEncodingContainer {
        let slot: Slot
        let codingPath: [any CodingKey]
        var count: Int { slot.count }

        private func next() -> (Slot, [any CodingKey]) {
            let path = codingPath + [PathKey(intValue: slot.count)]
            return (slot.appended(), path)
        }

        mutating func encodeNil() throws { next().0.content = .value(.null) }
        mutating func encode(_ value: Bool) throws { next().0.content = .value(.bool(value)) }
        mutating func encode(_ value: String) throws { next().0.content = .value(.string(value)) }
        mutating func encode(_ value: Double) throws {
            let (s, p) = next()
            try s.number(value, codingPath: p)
        }
        mutating func encode(_ value: Float) throws {
            let (s, p) = next()
            try s.number(value, codingPath: p)
        }
        mutating func encode(_ value: Int) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int8) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int16) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int32) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int64) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt8) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt16) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt32) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt64) throws { next().0.content = .value(.number("\(value)")) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            let (s, p) = next()
            try s.encode(value, codingPath: p)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type
        ) -> KeyedEncodingContainer<NestedKey> {
            let (s, p) = next()
            s.makeObject()
            return KeyedEncodingContainer(KeyedSlotContainer<NestedKey>(slot: s, codingPath: p))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let (s, p) = next()
            s.makeArray()
            return UnkeyedSlotContainer(slot: s, codingPath: p)
        }

        mutating func superEncoder() -> any Encoder {
            let (s, p) = next()
            return SlotEncoder(slot: s, codingPath: p)
        }
    }

    fileprivate struct SingleSlotContainer: SingleValueEncodingContainer {
        let slot: Slot
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { slot.content = .value(.null) }
        mutating func encode(_ value: Bool) throws { slot.content = .value(.bool(value)) }
        mutating func encode(_ value: String) throws { slot.content = .value(.string(value)) }
        mutating func encode(_ value: Double) throws { try slot.number(value, codingPath: codingPath) }
        mutating func encode(_ value: Float) throws { try slot.number(value, codingPath: codingPath) }
        mutating func encode(_ value: Int) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int8) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int16) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int32) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: Int64) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt8) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt16) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt32) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode(_ value: UInt64) throws { slot.content = .value(.number("\(value)")) }
        mutating func encode<T: Encodable>(_ value: T) throws { try slot.encode(value, codingPath: codingPath) }
    }
}
