public import Foundation

/// JSON and timestamp conventions shared by the run engine's models and the HTTP layer.
///
/// Dates are RFC 3339 UTC with fractional seconds (`2026-11-26T10:00:00.123456Z`) on output; on input any RFC 3339
/// form is accepted (with or without fractional seconds, `Z` or an offset).
public enum RunEngineJSON {
    /// An encoder producing upstream's JSON (absent values omitted, dates as RFC 3339 with fractional seconds).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(formatTimestamp(date))
        }
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    /// A decoder accepting upstream's JSON.
    ///
    /// - Parameter requireCodespecKind: Reject codespecs without `kind` (JSON request bodies), as upstream does.
    public static func makeDecoder(requireCodespecKind: Bool = false) -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw TygerRunEngineError.invalid("'\(text)' is not an RFC 3339 date-time")
            }
            return date
        }
        if requireCodespecKind { decoder.userInfo[.tygerRequireCodespecKind] = true }
        return decoder
    }

    /// Formats `date` as RFC 3339 UTC with microseconds.
    public static func formatTimestamp(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        return Timestamp.format(seconds: Int(micros.floorDiv(1_000_000)), nanos: Int(micros.floorMod(1_000_000)) * 1000, digits: 6)
    }

    /// Parses RFC 3339 (`2026-11-26T10:00:00Z`, `...00.5+01:00`); `nil` when the text is not such a timestamp.
    public static func parseTimestamp(_ text: String) -> Date? {
        guard let (seconds, nanos) = Timestamp.parse(text) else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
    func floorMod(_ d: Int64) -> Int64 { self - floorDiv(d) * d }
}
