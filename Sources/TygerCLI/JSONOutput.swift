import Foundation
import TygerCore

/// Prints JSON the way the upstream CLI does: 2-space indentation, fields in a fixed order per resource.
enum JSONOutput {
    /// Buffer fields in upstream's CLI order (§12 item 14 of the inventory).
    static let bufferOrder = ["id", "createdAt", "location", "tags", "eTag", "expiresAt", "isSoftDeleted"]

    static func parse(_ text: String) throws -> Any {
        do { return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
            throw UsageError("the server returned invalid JSON")
        }
    }

    /// Renders `value`; objects list `order` keys first, then the rest sorted.
    static func render(_ value: Any, order: [String] = [], indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case let object as [String: Any]:
            if object.isEmpty { return "{}" }
            var keys = order.filter { object[$0] != nil && !(object[$0] is NSNull) }
            keys += object.keys.filter { !order.contains($0) && !(object[$0] is NSNull) }.sorted()
            let lines = keys.map { "\(inner)\(TextEncoding.jsonQuoted($0)): \(render(object[$0]!, indent: inner))" }
            return "{\n" + lines.joined(separator: ",\n") + "\n\(indent)}"
        case let array as [Any]:
            if array.isEmpty { return "[]" }
            let lines = array.map { inner + render($0, order: order, indent: inner) }
            return "[\n" + lines.joined(separator: ",\n") + "\n\(indent)]"
        case let string as String:
            return TextEncoding.jsonQuoted(string)
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        case is NSNull:
            return "null"
        default:
            return TextEncoding.jsonQuoted("\(value)")
        }
    }

}

/// Parses `--tag K=V` values (repeatable, or comma-separated lists).
func parseTags(_ values: [String], option: String = "--tag") throws -> [String: String] {
    var tags: [String: String] = [:]
    for value in values {
        for item in value.split(separator: ",", omittingEmptySubsequences: true) {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw UsageError("invalid \(option) '\(item)': expected KEY=VALUE")
            }
            tags[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
    }
    return tags
}

/// Parses upstream's TTL form `D`, `D.HH`, `D.HH:MM` or `D.HH:MM:SS` into seconds.
func parseTTL(_ text: String, option: String = "--ttl") throws -> Int {
    let bad = UsageError("invalid \(option) '\(text)': expected D.HH:MM:SS, e.g. 0.01:00:00 for one hour")
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let daysText = parts.first, !daysText.isEmpty, daysText.allSatisfy(\.isNumber), let days = Int(daysText) else { throw bad }
    var seconds = days * 86400
    if parts.count == 2 {
        let hms = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(hms.count), hms.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isNumber) }) else { throw bad }
        let values = hms.map { Int($0)! }  // two digits each, checked above
        guard values[0] <= 23, values.dropFirst().allSatisfy({ $0 <= 59 }) else { throw bad }
        seconds += values[0] * 3600 + (values.count > 1 ? values[1] * 60 : 0) + (values.count > 2 ? values[2] : 0)
    }
    return seconds
}

/// Formats seconds as a .NET TimeSpan (`d.hh:mm:ss`), as the API's `ttl` query expects.
func timeSpan(_ seconds: Int) -> String {
    let d = seconds / 86400
    let h = seconds % 86400 / 3600
    let m = seconds % 3600 / 60
    let s = seconds % 60
    return String(format: "%d.%02d:%02d:%02d", d, h, m, s)
}

/// RFC 3339 with fractional seconds, UTC.
func rfc3339(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: date)
}
