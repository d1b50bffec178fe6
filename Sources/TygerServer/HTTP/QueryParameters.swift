public import Foundation
import TygerModel

/// The query string of a request, decoded once, with typed getters: the one query decoder of every route (buffers,
/// codespecs, runs, the relay and the data plane).
///
/// Keys and values are percent-decoded and `+` is a space (`application/x-www-form-urlencoded`), so
/// `tag%5Bk%5D=v`, which Go's `url.Values.Encode` sends, reads as `tag[k]=v`. Pairs keep their order; a getter of a
/// repeated parameter returns the last value. Bad values throw 400 `InvalidInput` (``APIError/invalidInput(_:)``).
///
/// ```swift
/// let query = QueryParameters(request.uri.query)
/// let tags = query.tags("tag")              // [k: v]
/// let limit = try query.limit()             // 20 when absent, at most 2000
/// ```
public struct QueryParameters: Sendable {
    /// The decoded pairs, in request order.
    public let pairs: [(key: String, value: String)]
    /// The raw (still encoded) pairs, in request order; `nextLink` keeps them as the client sent them.
    private let rawPairs: [Substring]

    /// The default page size of list routes (upstream's `QueryParameters.GetValidatedPageLimit`).
    public static let defaultLimit = 20
    /// The largest page size; larger `limit`s are silently capped.
    public static let maxLimit = 2000

    /// Decodes a query string (without the `?`); `nil` is an empty query.
    ///
    /// - Parameter query: The raw query, as in `request.uri.query`.
    public init(_ query: String?) {
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

    /// The last value of a parameter.
    ///
    /// - Parameter name: The decoded key.
    /// - Returns: `nil` when absent.
    public func string(_ name: String) -> String? { pairs.last(where: { $0.key == name })?.value }

    /// Every value of a repeated parameter, in order.
    ///
    /// - Parameter name: The decoded key.
    /// - Returns: The values; empty when absent.
    public func all(_ name: String) -> [String] { pairs.filter { $0.key == name }.map(\.value) }

    /// A boolean parsed like .NET's `bool.TryParse`: `true` or `false`, any case, spaces trimmed.
    ///
    /// - Parameter name: The decoded key.
    /// - Returns: `nil` when absent or empty.
    /// - Throws: 400 `InvalidInput` `<name> must be true or false` for any other value.
    public func bool(_ name: String) throws(APIError) -> Bool? {
        guard let raw = string(name)?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        switch raw.lowercased() {
        case "true": return true
        case "false": return false
        default: throw .invalidInput("\(name) must be true or false")
        }
    }

    /// An integer.
    ///
    /// - Parameter name: The decoded key.
    /// - Returns: `nil` when absent or empty.
    /// - Throws: 400 `InvalidInput` `<name> must be an integer` for anything else, including values past the range
    ///   of `Int`.
    public func int(_ name: String) throws(APIError) -> Int? {
        guard let raw = string(name)?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        guard let value = Int(raw) else { throw .invalidInput("\(name) must be an integer") }
        return value
    }

    /// The page size `limit`: ``defaultLimit`` when absent, capped at ``maxLimit``; `0` asks for an empty page.
    ///
    /// - Returns: The page size.
    /// - Throws: 400 `InvalidInput` `Limit must be a non-negative integer.` for a negative or non-integer value.
    public func limit() throws(APIError) -> Int {
        guard let raw = string("limit")?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else {
            return Self.defaultLimit
        }
        // Digits past `Int.max` are a (very) large limit: capped like any other, as upstream.
        if raw.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return Int(raw).map { min($0, Self.maxLimit) } ?? Self.maxLimit
        }
        guard let value = Int(raw), value >= 0 else { throw .invalidInput("Limit must be a non-negative integer.") }
        return min(value, Self.maxLimit)
    }

    /// An RFC 3339 date-time (``RFC3339/parse(_:)``: any offset, fractional seconds kept).
    ///
    /// - Parameter name: The decoded key.
    /// - Returns: `nil` when absent or empty.
    /// - Throws: 400 `InvalidInput` `The value '<v>' is not valid for <name>.`.
    public func date(_ name: String) throws(APIError) -> Date? {
        guard let raw = string(name), !raw.isEmpty else { return nil }
        guard let date = RFC3339.parse(raw) else { throw .invalidInput("The value '\(raw)' is not valid for \(name).") }
        return date
    }

    /// The `prefix[KEY]=VALUE` parameters (`tag[..]`, `excludeTag[..]`) as a map; the last value of a key wins.
    ///
    /// - Parameter prefix: `tag` or `excludeTag`.
    /// - Returns: The tags; empty when there are none.
    public func tags(_ prefix: String) -> [String: String] {
        var result: [String: String] = [:]
        let open = prefix + "["
        for (key, value) in pairs where key.hasPrefix(open) && key.hasSuffix("]") && key.count > open.count {
            result[String(key.dropFirst(open.count).dropLast())] = value
        }
        return result
    }

    /// Upstream's `nextLink`: the request path and its query as the client sent it, with `_ct` replaced by `token`.
    ///
    /// - Parameters:
    ///   - path: The request path.
    ///   - token: The continuation token of the next page; percent-encoded here.
    /// - Returns: `<path>?<query without _ct>&_ct=<token>`.
    public func nextLink(path: String, token: String) -> String {
        let kept = zip(rawPairs, pairs).filter { $0.1.key != "_ct" }.map { String($0.0) }
        let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
        return path + "?" + (kept + ["_ct=\(encoded)"]).joined(separator: "&")
    }
}
