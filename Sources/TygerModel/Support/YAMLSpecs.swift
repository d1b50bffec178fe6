import Foundation
private import Yams

/// Loads codespecs and run specs from YAML files (`tyger codespec create -f`, `tyger run create -f`).
///
/// Decoding is strict, as upstream's: an unknown field anywhere is an error naming it. Errors say where the problem
/// is: `<file>:<line>:<column>: ` (or `line L, column C: ` without a file name) before the message, from Yams' own
/// marks; a problem Yams gives no position for names the field path instead.
///
/// Documents are bounded before they are decoded: at most ``maxDocumentBytes``, and at most ``maxNodes`` nodes
/// nested at most ``maxDepth`` deep once aliases are expanded, so a small alias bomb is refused instead of growing
/// to gigabytes.
public enum YAMLSpecs {
    /// The largest spec file, in bytes (1 MiB; real specs are a few KiB).
    public static let maxDocumentBytes = 1 << 20
    /// The most nodes (scalars, mappings, sequences) a spec may have with every alias expanded.
    public static let maxNodes = 100_000
    /// The deepest nesting a spec may have with every alias expanded.
    public static let maxDepth = 200
    /// Parses a codespec file and validates it.
    ///
    /// - Parameters:
    ///   - yaml: The file's text.
    ///   - name: The name given on the command line; it overrides `name` in the file.
    ///   - file: The file's name, for the position in error messages.
    ///   - completing: Command-line flags to apply before validation (upstream's CLI lets `--image` and the other
    ///     flags complete or override the file); with it, the file may lack `image`.
    /// - Returns: The codespec, `kind` defaulting to `job`.
    /// - Throws: ``TygerModelError`` `.invalidInput` for malformed YAML, unknown fields, wrong types and every
    ///   `Codespec.validate()` failure; what `completing` throws.
    public static func codespec(
        fromYAML yaml: String,
        name: String? = nil,
        file: String? = nil,
        completing: ((inout Codespec) throws -> Void)? = nil
    ) throws -> Codespec {
        var spec: Codespec = try decode(
            Codespec.self,
            from: yaml,
            what: "codespec",
            file: file,
            incomplete: completing != nil
        )
        if let name { spec.name = name }
        try completing?(&spec)
        do { try spec.validate() } catch let error as TygerModelError { throw located(error, at: nil, file: file) }
        return spec
    }

    /// Parses a run spec file.
    ///
    /// An inline codespec gets `kind: job` when it has none (upstream forces it), and is validated.
    /// - Parameters:
    ///   - file: The file's name, for the position in error messages.
    ///   - completing: Command-line flags to apply before validation; with it, the file may lack `job.codespec`
    ///     (given by `--codespec`).
    /// - Returns: The run request (system fields cleared).
    /// - Throws: ``TygerModelError`` `.invalidInput` for malformed YAML, unknown fields, wrong types, an invalid
    ///   codespec reference or inline codespec; what `completing` throws.
    public static func run(
        fromYAML yaml: String,
        file: String? = nil,
        completing: ((inout Run) throws -> Void)? = nil
    ) throws -> Run {
        var run: Run = try decode(Run.self, from: yaml, what: "run", file: file, incomplete: completing != nil)
        run = run.withoutSystemFields
        try completing?(&run)
        do {
            switch run.job.codespec {
            case .named(let reference): _ = try CodespecReference.parse(reference)
            case .inline(let spec): try spec.validate()
            }
        } catch let error as TygerModelError {
            throw located(error, at: nil, file: file)
        }
        return run
    }

    static func decode<T: Decodable>(
        _ type: T.Type,
        from yaml: String,
        what: String,
        file: String? = nil,
        incomplete: Bool = false
    ) throws -> T {
        try checkBounds(yaml, what: what, file: file)
        do {
            return try YAMLDecoder().decode(T.self, from: yaml, userInfo: [.tygerIncompleteSpecFile: incomplete])
        } catch let error as TygerModelError {
            throw located(error, at: nil, file: file)
        } catch let error as DecodingError {
            if let ours = modelError(in: error) {
                throw located(ours, at: mark(of: error, in: yaml), file: file)
            }
            if case .dataCorrupted(let context) = error, let yamlError = context.underlyingError as? YamlError {
                throw invalidYAML(yamlError, what: what, file: file)
            }
            let position = mark(of: error, in: yaml)
            throw TygerModelError.invalid(
                prefix(position, file: file) + "invalid \(what) file: \(problemText(error, located: position != nil))",
                cause: error
            )
        } catch let error as YamlError {
            throw invalidYAML(error, what: what, file: file)
        } catch {
            throw TygerModelError.invalid(prefix(nil, file: file) + "invalid \(what) file: \(error)", cause: error)
        }
    }

    /// Refuses documents over ``maxDocumentBytes`` and those whose expanded tree exceeds ``maxNodes`` or
    /// ``maxDepth``, before the decoder expands anything.
    ///
    /// - Throws: ``TygerModelError`` `.invalidInput` naming the file and the limit.
    static func checkBounds(_ yaml: String, what: String, file: String?) throws {
        guard yaml.utf8.count <= maxDocumentBytes else {
            throw TygerModelError.invalid(
                prefix(nil, file: file) + "the \(what) file is larger than \(maxDocumentBytes >> 20) MiB"
            )
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw invalidYAML(error, what: what, file: file)
        }
        var budget = maxNodes
        guard let root, !withinBounds(root, depth: 1, budget: &budget) else { return }
        throw TygerModelError.invalid(
            prefix(nil, file: file)
                + "the \(what) file expands to more than \(maxNodes) nodes or \(maxDepth) levels (aliases count once "
                + "per use)"
        )
    }

    /// Walks the tree as a decoder would, aliases expanded, and stops as soon as a bound is exceeded: the cost is
    /// at most ``maxNodes`` steps whatever the document.
    private static func withinBounds(_ node: Node, depth: Int, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0, depth <= maxDepth else { return false }
        switch node {
        case .scalar, .alias:
            return true
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard withinBounds(key, depth: depth + 1, budget: &budget),
                    withinBounds(value, depth: depth + 1, budget: &budget)
                else { return false }
            }
            return true
        case .sequence(let sequence):
            for element in sequence where !withinBounds(element, depth: depth + 1, budget: &budget) { return false }
            return true
        }
    }

    private static func invalidYAML(_ error: YamlError, what: String, file: String?) -> TygerModelError {
        let (problem, mark) = problem(of: error)
        return TygerModelError.invalid(
            prefix(mark.map { ($0.line, $0.column) }, file: file) + "invalid \(what) file: \(problem)",
            cause: error
        )
    }

    /// The problem: the field path and expected type with Yams' own text for type errors, the message alone for
    /// other errors that have a position (the path would repeat it), else ``describe(_:)`` (which names the path).
    private static func problemText(_ error: DecodingError, located: Bool) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let own = context.debugDescription
            return own.isEmpty ? describe(error) : "\(describe(error)) (\(own))"
        case .dataCorrupted(let context) where located:
            return context.debugDescription
        default:
            return describe(error)
        }
    }

    /// `<file>:<line>:<column>: `, `line L, column C: `, `<file>: ` or nothing.
    private static func prefix(_ position: (line: Int, column: Int)?, file: String?) -> String {
        switch (position, file) {
        case (let p?, let f?): "\(f):\(p.line):\(p.column): "
        case (let p?, nil): "line \(p.line), column \(p.column): "
        case (nil, let f?): "\(f): "
        case (nil, nil): ""
        }
    }

    private static func located(
        _ error: TygerModelError,
        at position: (line: Int, column: Int)?,
        file: String?
    ) -> TygerModelError {
        let p = prefix(position, file: file)
        if p.isEmpty { return error }
        return TygerModelError(code: error.code, message: p + error.message, cause: error.cause)
    }

    /// Yams' problem text (with its context) and position, for a malformed document.
    private static func problem(of error: YamlError) -> (String, Mark?) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return ((context.map { $0.text + ": " } ?? "") + problem, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ("duplicate key\(duplicates.count == 1 ? "" : "s") \(keys)", context.mark)
        default:
            return (String(String(describing: error).split(separator: "\n").first ?? ""), nil)
        }
    }

    /// Where in `yaml` a decoding error is: the node at its coding path, or for unknown fields the first unknown key
    /// the message names. `nil` when the document does not compose or the error has no path.
    private static func mark(of error: DecodingError, in yaml: String) -> (line: Int, column: Int)? {
        let context: DecodingError.Context
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            context = c
        @unknown default: return nil
        }
        guard var node = try? Yams.compose(yaml: yaml) else { return nil }
        for key in context.codingPath {
            if let index = key.intValue, let sequence = node.sequence, sequence.indices.contains(index) {
                node = sequence[index]
            } else if let mapping = node.mapping, let value = mapping[key.stringValue] {
                node = value
            } else {
                break
            }
        }
        if case .dataCorrupted = error, let mapping = node.mapping {
            // An unknown field: the message names it before "; allowed fields are".
            let description = context.debugDescription
            let named = description.range(of: "; allowed").map { String(description[..<$0.lowerBound]) } ?? description
            if let key = mapping.first(where: { named.contains("'\($0.key.string ?? "")'") })?.key, let m = key.mark {
                return (m.line, m.column)
            }
        }
        return node.mark.map { ($0.line, $0.column) }
    }

    /// Our own error, when a decoder wrapped it (Yams reports errors thrown by `init(from:)` as data corruption).
    static func modelError(in error: any Error) -> TygerModelError? {
        if let ours = error as? TygerModelError { return ours }
        if case .dataCorrupted(let context) = error as? DecodingError, let underlying = context.underlyingError {
            return modelError(in: underlying)
        }
        return nil
    }

    /// A one-line description of a decoding error with the field path.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let p = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "the document" : "'\(p)'"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) must be of type \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is missing a value of type \(type)"
        case .keyNotFound(let key, let context):
            return "missing field '\(key.stringValue)' in \(path(context.codingPath))"
        case .dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context.codingPath))"
        @unknown default:
            return "\(error)"
        }
    }
}
