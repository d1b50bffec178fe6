import TygerCore

/// A JSON document as a tree, rendered by the fuzzers as JSON text or as YAML (block or flow style).
public indirect enum FuzzValue: Sendable {
    case null
    case bool(Bool)
    /// A number as written (so extreme forms such as `1e400` or 400 digits survive).
    case number(String)
    case string(String)
    case array([FuzzValue])
    case object([(String, FuzzValue)])

    /// Compact JSON text.
    public var json: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n
        case .string(let s): TextEncoding.jsonQuoted(s)
        case .array(let items): "[" + items.map(\.json).joined(separator: ",") + "]"
        case .object(let fields):
            "{" + fields.map { TextEncoding.jsonQuoted($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}"
        }
    }

    /// YAML in block style (nested mappings and sequences indented); scalars are written as JSON, which YAML reads.
    public var yaml: String { yamlLines(indent: 0).joined(separator: "\n") + "\n" }

    private func yamlLines(indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .object(let fields) where !fields.isEmpty && indent < 200:
            return fields.flatMap { key, value -> [String] in
                switch value {
                case .object(let f) where !f.isEmpty:
                    return [pad + TextEncoding.jsonQuoted(key) + ":"] + value.yamlLines(indent: indent + 2)
                case .array(let a) where !a.isEmpty:
                    return [pad + TextEncoding.jsonQuoted(key) + ":"] + value.yamlLines(indent: indent + 2)
                default:
                    return [pad + TextEncoding.jsonQuoted(key) + ": " + value.json]
                }
            }
        case .array(let items) where !items.isEmpty && indent < 200:
            return items.flatMap { item -> [String] in
                switch item {
                case .object(let f) where !f.isEmpty:
                    return [pad + "-"] + item.yamlLines(indent: indent + 2)
                case .array(let a) where !a.isEmpty:
                    return [pad + "-"] + item.yamlLines(indent: indent + 2)
                default:
                    return [pad + "- " + item.json]
                }
            }
        default:
            return [pad + json]
        }
    }

}

/// Structure-aware input generation for the parsers that take outside input: valid documents with one or more values
/// replaced by extreme numbers, odd types, deep nesting or unknown fields, and strings near the grammar of sizes,
/// durations, times, names and URLs. Deterministic for a seed.
public struct FuzzGenerator {
    public var rng: SeededGenerator

    public init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    /// A number in `0..<n`.
    public mutating func below(_ n: Int) -> Int { Int(rng.next() % UInt64(max(1, n))) }

    /// True with probability `1/n`.
    public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }

    /// One of `items`.
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// Numbers that break naive conversions: past `Int64`, `Int32`, `Double`, negative zero, long fractions.
    public static let extremeNumbers: [String] = [
        "0", "-0", "1", "-1", "0.5", "-0.0", "1e30", "-1e30", "1e308", "1e309", "-1e309", "1e-400", "4.9e-324",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "2147483647", "2147483648", "-2147483649", "4294967296", "1.7976931348623157e308", "123456789.123456789",
        String(repeating: "9", count: 400), "-" + String(repeating: "1", count: 64),
        "0." + String(repeating: "0", count: 300) + "1",
        "1E+2", "1e0000000000000000001", "100000000000000000000000000000000000000000", "3.0", "1.0e1",
    ]

    /// Strings that break naive handling: empty, huge, control characters, separators, non-ASCII, format-looking.
    public mutating func oddString() -> String {
        switch below(12) {
        case 0: return ""
        case 1: return String(repeating: "a", count: 1 + below(70_000))
        case 2: return "\u{0}\u{1}\u{7f}"
        case 3: return "../../etc/passwd"
        case 4: return "ä€😀\u{202e}"
        case 5: return pick(Self.extremeNumbers)
        case 6: return "%00%zz%"
        case 7: return "a=b&c[d]=e"
        case 8: return "   "
        case 9: return "-1"
        case 10: return "true"
        default: return randomText(maxLength: 24)
        }
    }

    /// Short text from a mixed alphabet (ASCII letters, digits, punctuation, a few multi-byte characters).
    public mutating func randomText(maxLength: Int) -> String {
        let alphabet = Array("abcXYZ019 .:-_/+=&%?#[]{}\"'\\\n\t,;*!~@$^()<>|`é€😀")
        return String((0..<below(maxLength + 1)).map { _ in pick(alphabet) })
    }

    /// A value of a random kind, about `depth` levels deep at most.
    public mutating func anyValue(depth: Int = 3) -> FuzzValue {
        switch below(depth > 0 ? 8 : 5) {
        case 0: return .null
        case 1: return .bool(oneIn(2))
        case 2: return .number(pick(Self.extremeNumbers))
        case 3, 4: return .string(oddString())
        case 5: return deeplyNested()
        case 6: return .array((0..<below(4)).map { _ in anyValue(depth: depth - 1) })
        default: return .object((0..<below(4)).map { _ in (oddString(), anyValue(depth: depth - 1)) })
        }
    }

    /// Arrays or objects nested hundreds to thousands of levels deep.
    public mutating func deeplyNested() -> FuzzValue {
        var value = FuzzValue.number("1")
        let levels = pick([64, 300, 600, 2000])
        let asObject = oneIn(2)
        for _ in 0..<levels { value = asObject ? .object([("a", value)]) : .array([value]) }
        return value
    }

    /// `valid` with one to three changes: a value replaced by one of another kind or an extreme one, a field removed,
    /// an unknown field added, or the whole document replaced by a stray value.
    public mutating func mutate(_ valid: FuzzValue) -> FuzzValue {
        if oneIn(50) { return anyValue() }
        var value = valid
        for _ in 0..<(1 + below(3)) { value = mutateOnce(value) }
        return value
    }

    private mutating func mutateOnce(_ value: FuzzValue) -> FuzzValue {
        switch value {
        case .object(var fields):
            if fields.isEmpty || oneIn(6) {
                fields.append((oneIn(2) ? randomText(maxLength: 12) : "unknownField", anyValue(depth: 2)))
                return .object(fields)
            }
            let i = below(fields.count)
            switch below(5) {
            case 0: fields.remove(at: i)
            case 1: fields[i].1 = anyValue(depth: 2)
            case 2: fields.append(fields[i])  // a duplicate key
            default: fields[i].1 = mutateOnce(fields[i].1)
            }
            return .object(fields)
        case .array(var items):
            if items.isEmpty || oneIn(4) {
                items.append(anyValue(depth: 2))
                return .array(items)
            }
            let i = below(items.count)
            items[i] = oneIn(2) ? anyValue(depth: 2) : mutateOnce(items[i])
            return .array(items)
        case .number:
            return oneIn(4) ? anyValue(depth: 1) : .number(pick(Self.extremeNumbers))
        default:
            return oneIn(2) ? .number(pick(Self.extremeNumbers)) : anyValue(depth: 1)
        }
    }

    /// A string built from the pieces of a grammar (digits, units, separators) with some random noise: most are near
    /// misses of a valid value, some are valid.
    public mutating func near(_ pieces: [String], count: Int = 6) -> String {
        var out = ""
        for _ in 0..<(1 + below(count)) {
            switch below(10) {
            case 0: out += pick(Self.extremeNumbers)
            case 1: out += randomText(maxLength: 3)
            default: out += pick(pieces)
            }
        }
        if oneIn(40) { out = String(repeating: out, count: 1 + below(2000)) }
        return out
    }
}
