import Foundation

/// `If-Match` handling shared by buffers and runs.
public enum ETagPrecondition {
    /// The ETag an `If-Match` header asks for, or `nil` when it sets no precondition (absent, empty or `*`).
    /// Surrounding quotes and a weak `W/` prefix are ignored.
    public static func expected(fromIfMatch header: String?) -> String? {
        guard var value = header?.trimmingCharacters(in: .whitespaces), !value.isEmpty, value != "*" else {
            return nil
        }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = String(value.dropFirst().dropLast())
        }
        return value
    }
}
