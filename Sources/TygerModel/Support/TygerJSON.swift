public import Foundation

/// JSON encoding and request-body decoding with upstream's conventions and error messages.
public enum TygerJSON {
    /// Returns the encoder for response bodies, stored records and files: an ``OrderedJSONEncoder``, compact, keys in
    /// the order types encode them (upstream's field order), maps sorted by key, slashes not escaped (access URLs stay
    /// readable), dates as RFC 3339 UTC with microseconds (``RFC3339/format(_:)``). The same value always gives the
    /// same bytes.
    ///
    /// Foundation's `JSONEncoder` keeps no key order on Linux (it changes from run to run) and is not used.
    public static func makeEncoder() -> OrderedJSONEncoder {
        OrderedJSONEncoder(prettyPrinted: false)
    }

    /// Returns the encoder for what people read (the CLI's output): an ``OrderedJSONEncoder``, indented by two spaces
    /// with `": "` between keys and values, keys in the order types encode them (upstream's field order), maps sorted
    /// by key, dates as ``RFC3339/format(_:)``.
    public static func makePrettyEncoder() -> OrderedJSONEncoder {
        OrderedJSONEncoder(prettyPrinted: true)
    }

    /// Returns a decoder for wire values: dates in any RFC 3339 form (``RFC3339/parse(_:)``).
    ///
    /// - Parameter requireCodespecKind: Reject codespecs without `kind` (JSON request bodies), as upstream does;
    ///   files default it to `job`.
    public static func makeDecoder(requireCodespecKind: Bool = false) -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "The value '\(text.prefix(64))' is not a valid RFC 3339 date-time."
                )
            }
            return date
        }
        if requireCodespecKind { decoder.userInfo[.tygerRequireCodespecKind] = true }
        return decoder
    }

    /// Encodes a value for a response body.
    ///
    /// - Parameter value: The value to encode.
    /// - Returns: The JSON bytes.
    /// - Throws: `EncodingError` only for values that cannot be represented in JSON (never for this module's
    ///   types).
    public static func encode(_ value: some Encodable) throws -> Data {
        try makeEncoder().encode(value)
    }

    /// Decodes a request body with upstream's rules and messages.
    ///
    /// - An empty body is an error (`Error deserializing input: The input does not contain any JSON tokens.`)
    ///   unless `allowEmpty`, in which case it decodes as `{}`.
    /// - `null` is an error: `null is not a valid input value`.
    /// - `{}` is an error unless `allowEmpty`: `An empty object is not a valid input value`.
    /// - Malformed JSON, a wrong type or an unrecognized property (strict types) gives
    ///   `Error deserializing input: <reason> Path: $.<path>`.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - data: The request body.
    ///   - allowEmpty: Whether an empty body or `{}` is acceptable (upstream's update bodies).
    ///   - allowEmptyObject: Whether `{}` (but not an empty body) is acceptable.
    /// - Returns: The decoded value.
    /// - Throws: ``TygerModelError`` with code ``TygerModelError/Code/invalidJSON`` in the cases above.
    public static func decodeBody<T: Decodable>(
        _ type: T.Type,
        from data: Data,
        allowEmpty: Bool = false,
        allowEmptyObject: Bool = false,
        requireCodespecKind: Bool = false
    ) throws(TygerModelError) -> T {
        let trimmed = data.drop(while: {
            $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 || $0 == 0xEF
                || $0 == 0xBB || $0 == 0xBF
        })
        if trimmed.isEmpty {
            if allowEmpty { return try decode(type, from: Data("{}".utf8), requireCodespecKind: requireCodespecKind) }
            throw TygerModelError(
                code: .invalidJSON,
                message: "Error deserializing input: The input does not contain any JSON tokens."
            )
        }
        if trimmed.starts(with: Array("null".utf8)),
            trimmed.dropFirst(4).allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        {
            throw TygerModelError(code: .invalidJSON, message: "null is not a valid input value")
        }
        let value = try decode(type, from: Data(trimmed), requireCodespecKind: requireCodespecKind)
        if !allowEmpty, !allowEmptyObject, trimmed.first == UInt8(ascii: "{"),
            let probe = try? JSONDecoder().decode(KeyCountProbe.self, from: Data(trimmed)), probe.count == 0
        {
            throw TygerModelError(code: .invalidJSON, message: "An empty object is not a valid input value")
        }
        return value
    }

    private static func decode<T: Decodable>(
        _ type: T.Type,
        from data: Data,
        requireCodespecKind: Bool
    ) throws(TygerModelError) -> T {
        do {
            return try makeDecoder(requireCodespecKind: requireCodespecKind).decode(type, from: data)
        } catch let error as TygerModelError {
            throw error
        } catch let error as DecodingError {
            if let ours = YAMLSpecs.modelError(in: error) { throw ours }
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let number = unrepresentableNumber(in: data)
            {
                // Foundation reports a number that does not fit its field without a path: name the field here.
                throw TygerModelError(
                    code: .invalidJSON,
                    message: "Error deserializing input: The JSON value \(number.text) is out of range or not an "
                        + "integer (integers must be from -2^63 to 2^63-1). Path: \(number.path)",
                    cause: error
                )
            }
            throw TygerModelError(
                code: .invalidJSON,
                message: "Error deserializing input: " + describe(error),
                cause: error
            )
        } catch {
            throw TygerModelError(code: .invalidJSON, message: "Error deserializing input: \(error)")
        }
    }

    /// The first number in `data` that no integer field can hold (non-finite, past ±2^63, or fractional), with its
    /// JSON path; numbers past the range come first, as fractional ones may belong to a floating-point field.
    static func unrepresentableNumber(in data: Data) -> (path: String, text: String)? {
        guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        var outOfRange: (String, String)?
        var fractional: (String, String)?
        func visit(_ value: Any, _ path: String) {
            if outOfRange != nil { return }
            switch value {
            case let object as [String: Any]:
                for key in object.keys.sorted() { visit(object[key]!, path + "." + key) }  // key from keys
            case let array as [Any]:
                for (index, element) in array.enumerated() { visit(element, path + "[\(index)]") }
            case is Bool, is String:
                return
            case let number as NSNumber:
                let double = number.doubleValue
                if !double.isFinite || double >= 9.223_372_036_854_775_807e18 || double < -9.223_372_036_854_775_808e18
                {
                    outOfRange = (path, "\(number)")
                } else if double.rounded() != double, fractional == nil {
                    fractional = (path, "\(number)")
                }
            default:
                return
            }
        }
        visit(root, "$")
        return (outOfRange ?? fractional).map { (path: $0.0, text: $0.1) }
    }

    private struct KeyCountProbe: Decodable {
        var count: Int
        init(from decoder: any Decoder) throws {
            count = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.count
        }
    }

    /// A short, client-facing description of a decoding error ending with its JSON path (`$.tags.key`).
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var out = "$"
            for key in codingPath {
                if let index = key.intValue { out += "[\(index)]" } else { out += "." + key.stringValue }
            }
            return out
        }
        func sentence(_ s: String) -> String { s.hasSuffix(".") ? s : s + "." }
        switch error {
        case .typeMismatch(let type, let context):
            return "The JSON value could not be converted to \(typeName(type)). Path: \(path(context.codingPath))"
        case .valueNotFound(let type, let context):
            return "The JSON value null could not be converted to \(typeName(type)). Path: \(path(context.codingPath))"
        case .keyNotFound(let key, let context):
            return "Missing required property '\(key.stringValue)'. Path: \(path(context.codingPath))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty, let underlying = context.underlyingError {
                return "The input is not valid JSON: \(sentence(String(describing: underlying))) Path: $"
            }
            return "\(sentence(context.debugDescription)) Path: \(path(context.codingPath))"
        @unknown default:
            return "The input is not valid."
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Dictionary") { return "an object" }
            if name.hasPrefix("Array") { return "an array" }
            return "an object"
        }
    }
}

extension CodingUserInfoKey {
    /// Set to `true` to require `kind` on codespecs (JSON bodies); YAML files default it to `job`.
    static let tygerRequireCodespecKind = CodingUserInfoKey(rawValue: "tyger.requireCodespecKind")!  // a valid key
    /// Set to `true` for spec files that command-line flags complete: a codespec's `image` and a run's `job` or
    /// `job.codespec` may be missing (validation after the flags are applied says whether they are still missing).
    static let tygerIncompleteSpecFile = CodingUserInfoKey(rawValue: "tyger.incompleteSpecFile")!  // a valid key
}
