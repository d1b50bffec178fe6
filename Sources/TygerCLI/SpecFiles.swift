import Foundation
import TygerModel

/// Loads YAML spec files (codespecs, run specifications) once, strictly, with ``TygerModel/YAMLSpecs``: the rules
/// the server applies to JSON bodies. An unknown field or a wrong type is reported before any server call, as
/// `<file>:<line>:<column>: <problem>`.
enum SpecFiles {
    /// The codespec in `path`.
    ///
    /// - Parameter name: The name given on the command line; it overrides `name` in the file.
    /// - Throws: `UsageError` when the file cannot be read; `TygerModelError` (with the file and position) when it
    ///   is not a valid codespec.
    static func codespec(_ path: String, name: String?) throws -> Codespec {
        try YAMLSpecs.codespec(fromYAML: try read(path), name: name, file: path)
    }

    /// The run request in `path`.
    ///
    /// - Throws: `UsageError` when the file cannot be read; `TygerModelError` (with the file and position) when it
    ///   is not a valid run specification.
    static func run(_ path: String) throws -> Run {
        try YAMLSpecs.run(fromYAML: try read(path), file: path)
    }

    private static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("cannot read the file '\(path)'")
        }
        return text
    }
}
