import Foundation
import TygerModel

/// Loads YAML spec files (codespecs, run specifications) once, strictly, with ``TygerModel/YAMLSpecs``: the rules
/// the server applies to JSON bodies. An unknown field or a wrong type is reported before any server call, as
/// `<file>:<line>:<column>: <problem>`.
enum SpecFiles {
    /// The codespec in `path`.
    ///
    /// - Parameters:
    ///   - name: The name given on the command line; it overrides `name` in the file.
    ///   - flags: Applies the command-line flags, which complete or override the file, before validation.
    /// - Throws: `CommandFailure` when the file cannot be read; `TygerModelError` (with the file and position) when it
    ///   is not a valid codespec.
    static func codespec(_ path: String, name: String?, flags: (inout Codespec) throws -> Void) throws -> Codespec {
        let yaml = try read(path)
        return try withoutActuallyEscaping(flags) {
            try YAMLSpecs.codespec(fromYAML: yaml, name: name, file: path, completing: $0)
        }
    }

    /// The run request in `path`.
    ///
    /// - Parameter flags: Applies the command-line flags, which complete or override the file, before validation.
    /// - Throws: `CommandFailure` when the file cannot be read; `TygerModelError` (with the file and position) when it
    ///   is not a valid run specification.
    static func run(_ path: String, flags: (inout Run) throws -> Void) throws -> Run {
        let yaml = try read(path)
        return try withoutActuallyEscaping(flags) { try YAMLSpecs.run(fromYAML: yaml, file: path, completing: $0) }
    }

    private static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandFailure("cannot read the file '\(path)'")
        }
        return text
    }
}
