/// A tiny parser for flat JSON objects of string values, enough for the format's metadata blobs.
///
/// Core stays free of Foundation so it builds fast and never touches files; these documents are a handful of
/// string fields.
enum MiniJSON {
    struct ParseError: Error {}

    /// Parses `{"k":"v",...}` (string, number, bool or null values; numbers and bools are kept as text).
    static func parseObject(_ bytes: [UInt8]) throws -> [String: String] {
        var i = 0
        func skipSpace() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func expect(_ c: UInt8) throws {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else { throw ParseError() }
            i += 1
        }
        func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c == UInt8(ascii: "\\") {
                    guard i < bytes.count else { throw ParseError() }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count,
                            let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16),
                            let scalar = Unicode.Scalar(v)
                        else { throw ParseError() }
                        i += 4
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: out.append(e)
                    }
                } else {
                    out.append(c)
                }
            }
            throw ParseError()
        }
        func scalar() throws -> String {
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "\"") { return try string() }
            let start = i
            while i < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), 0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) {
                i += 1
            }
            guard i > start else { throw ParseError() }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard text == "true" || text == "false" || text == "null" || Double(text) != nil else { throw ParseError() }
            return text
        }
        var result: [String: String] = [:]
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                let key = try string()
                try expect(UInt8(ascii: ":"))
                result[key] = try scalar()
                skipSpace()
                guard i < bytes.count else { throw ParseError() }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                break
            }
        }
        skipSpace()
        guard i == bytes.count else { throw ParseError() }
        return result
    }

    /// Encodes a flat object of strings, keys sorted, with JSON escaping.
    static func encode(_ object: [String: String]) -> String {
        "{" + object.keys.sorted().map { "\(quote($0)):\(quote(object[$0]!))" }.joined(separator: ",") + "}"
    }

    static func quote(_ s: String) -> String { TextEncoding.jsonQuoted(s) }
}
