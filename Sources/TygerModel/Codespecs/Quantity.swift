/// A Kubernetes-style resource quantity (`500m`, `2`, `1Gi`, `1.5e3`), kept as written.
///
/// Accepted in JSON and YAML as a number or a string, always emitted as a string, as upstream does.
public struct Quantity: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The quantity as written.
    public var text: String

    /// A quantity from its text; validity is checked by `value`/`Codespec.validate()`.
    public init(_ text: String) { self.text = text }
    public init(stringLiteral value: String) { self.text = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) {
            text = s
        } else if let i = try? container.decode(Int64.self) {
            text = String(i)
        } else if let d = try? container.decode(Double.self) {
            text = String(d)
        } else {
            throw TygerModelError.invalid("a quantity must be a string or a number")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public var description: String { text }

    /// The largest quantity accepted (Kubernetes keeps quantities in 64-bit integers): 2^63-1.
    public static let maxValue = 9_223_372_036_854_775_807.0

    /// The message Kubernetes gives for a malformed quantity.
    static let formatMessage =
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

    /// The numeric value (for CPU: cores; for memory: bytes), or `nil` when the text is not a valid quantity or its
    /// value is not a finite number (`1e400`).
    public var value: Double? {
        guard let value = parsedValue, value.isFinite else { return nil }
        return value
    }

    private var parsedValue: Double? {
        var chars = Substring(text.trimmingSpaces())
        var sign = 1.0
        if chars.first == "+" || chars.first == "-" {
            if chars.first == "-" { sign = -1 }
            chars = chars.dropFirst()
        }
        let numberEnd = chars.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? chars.endIndex
        let number = chars[..<numberEnd]
        guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number != ".",
            let base = Double(number.hasPrefix(".") ? "0" + number : String(number))
        else { return nil }
        let suffix = String(chars[numberEnd...])
        let multipliers: [String: Double] = [
            "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 1024, "Mi": 1_048_576, "Gi": 1_073_741_824, "Ti": 1_099_511_627_776, "Pi": 1_125_899_906_842_624,
            "Ei": 1_152_921_504_606_846_976,
        ]
        if let m = multipliers[suffix] { return sign * base * m }
        if let first = suffix.first, first == "e" || first == "E" {
            let exponent = suffix.dropFirst()
            let digits = exponent.first == "+" || exponent.first == "-" ? exponent.dropFirst() : exponent
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let e = Double(exponent) else {
                return nil
            }
            return sign * base * pow10(e)
        }
        return nil
    }

    private func pow10(_ e: Double) -> Double {
        var result = 1.0
        // Past 10^400 every Double is infinite: stop there (and never convert a huge exponent to an Int).
        let n = abs(e) >= 400 ? 400 : Int(abs(e))
        for _ in 0..<n { result *= 10 }
        return e < 0 ? 1 / result : result
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
