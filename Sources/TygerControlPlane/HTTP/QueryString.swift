import Foundation

/// A decoded URL query string that keeps every pair in order.
///
/// Unlike Hummingbird's `queryParameters`, keys are percent-decoded too, because the Go CLI sends
/// `tag%5Bkey%5D=value` (`url.Values.Encode`). `+` decodes to a space, as in `application/x-www-form-urlencoded`.
struct QueryString: Sendable {
    /// The decoded pairs, in request order.
    let pairs: [(key: String, value: String)]
    /// The raw (still encoded) pairs, in request order; used to rebuild `nextLink`.
    let rawPairs: [Substring]

    init(_ query: String?) {
        let raw = (query ?? "").split(separator: "&", omittingEmptySubsequences: true)
        rawPairs = raw
        pairs = raw.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (Self.decode(parts[0]), parts.count > 1 ? Self.decode(parts[1]) : "")
        }
    }

    private static func decode(_ s: Substring) -> String {
        let plusDecoded = s.replacingOccurrences(of: "+", with: " ")
        return plusDecoded.removingPercentEncoding ?? plusDecoded
    }

    /// The last value of a parameter, or `nil` when it is absent.
    func last(_ name: String) -> String? {
        pairs.last(where: { $0.key == name })?.value
    }

    /// The `prefix[KEY]=VALUE` parameters as a dictionary (the last value wins for a repeated key).
    func tags(_ prefix: String) -> [String: String] {
        var result: [String: String] = [:]
        let open = prefix + "["
        for (key, value) in pairs where key.hasPrefix(open) && key.hasSuffix("]") && key.count > open.count {
            result[String(key.dropFirst(open.count).dropLast())] = value
        }
        return result
    }

    /// A boolean parameter parsed like .NET's `bool.TryParse` (case-insensitive `true`/`false`, spaces trimmed).
    ///
    /// - Returns: `nil` when absent.
    /// - Throws: 400 `<name> must be true or false` for any other value.
    func bool(_ name: String) throws(TygerControlPlaneError) -> Bool? {
        guard let raw = last(name) else { return nil }
        switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true": return true
        case "false": return false
        default: throw .invalidInput("\(name) must be true or false")
        }
    }

    /// The query with every `name=...` pair removed and `name=value` appended, still percent-encoded.
    func replacing(_ name: String, with value: String) -> String {
        let kept = zip(rawPairs, pairs).filter { $0.1.key != name }.map { String($0.0) }
        return (kept + ["\(name)=\(value)"]).joined(separator: "&")
    }
}
