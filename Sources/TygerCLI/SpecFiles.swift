import Foundation
import Yams

/// Loads YAML spec files (codespecs, run specifications) into JSON-ready values.
///
/// YAML scalars under keys whose values must be strings (env values, args, command) are kept as strings even when
/// they look like numbers, so `FOO: 1` stays `"1"`. Unknown fields are left in: the server rejects them with the
/// field's name, which is the clearest message.
enum SpecFiles {
    static func load(_ path: String) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("cannot read the file '\(path)'")
        }
        let value: Any?
        do { value = try Yams.load(yaml: text) } catch {
            throw UsageError("invalid YAML in '\(path)': \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let object = value.map(jsonValue) as? [String: Any] else {
            throw UsageError("'\(path)' must hold a YAML mapping")
        }
        return object
    }

    /// Converts Yams output into JSONSerialization-compatible values.
    static func jsonValue(_ value: Any) -> Any {
        switch value {
        case let dict as [AnyHashable: Any]:
            var out: [String: Any] = [:]
            for (k, v) in dict {
                let key = "\(k)"
                if ["env", "args", "command"].contains(key) {
                    out[key] = stringify(v)
                } else {
                    out[key] = jsonValue(v)
                }
            }
            return out
        case let array as [Any]: return array.map(jsonValue)
        case let date as Date: return rfc3339(date)
        case is NSNull: return NSNull()
        default: return value
        }
    }

    static func stringify(_ value: Any) -> Any {
        switch value {
        case let dict as [AnyHashable: Any]:
            var out: [String: Any] = [:]
            for (k, v) in dict { out["\(k)"] = v is NSNull ? "" : "\(v)" }
            return out
        case let array as [Any]: return array.map { "\($0)" }
        case let s as String: return [s]
        default: return value
        }
    }
}
