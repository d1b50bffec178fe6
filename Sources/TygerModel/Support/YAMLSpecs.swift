private import Yams

/// Loads codespecs and run specs from YAML files (`tyger codespec create -f`, `tyger run create -f`).
///
/// Decoding is strict, as upstream's: an unknown field anywhere is an error naming it.
public enum YAMLSpecs {
    /// Parses a codespec file and validates it.
    ///
    /// - Parameters:
    ///   - yaml: The file's text.
    ///   - name: The name given on the command line; it overrides `name` in the file.
    /// - Returns: The codespec, `kind` defaulting to `job`.
    /// - Throws: ``TygerModelError`` `.invalidInput` for malformed YAML, unknown fields, wrong types and every
    ///   `Codespec.validate()` failure.
    public static func codespec(fromYAML yaml: String, name: String? = nil) throws -> Codespec {
        var spec: Codespec = try decode(Codespec.self, from: yaml, what: "codespec")
        if let name { spec.name = name }
        try spec.validate()
        return spec
    }

    /// Parses a run spec file.
    ///
    /// An inline codespec gets `kind: job` when it has none (upstream forces it), and is validated.
    /// - Returns: The run request (system fields cleared).
    /// - Throws: ``TygerModelError`` `.invalidInput` for malformed YAML, unknown fields, wrong types, an invalid
    ///   codespec reference or inline codespec.
    public static func run(fromYAML yaml: String) throws -> Run {
        var run: Run = try decode(Run.self, from: yaml, what: "run")
        run = run.withoutSystemFields
        switch run.job.codespec {
        case .named(let reference): _ = try CodespecReference.parse(reference)
        case .inline(let spec): try spec.validate()
        }
        return run
    }

    static func decode<T: Decodable>(_ type: T.Type, from yaml: String, what: String) throws -> T {
        do {
            return try YAMLDecoder().decode(T.self, from: yaml)
        } catch let error as TygerModelError {
            throw error
        } catch let error as DecodingError {
            if let ours = modelError(in: error) { throw ours }
            throw TygerModelError.invalid("invalid \(what) file: \(describe(error))", cause: error)
        } catch {
            throw TygerModelError.invalid("invalid \(what) file: \(error)", cause: error)
        }
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

