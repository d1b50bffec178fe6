private import CTygerSpawn

#if canImport(Glibc)
private import Glibc
#endif

/// Starting child processes the way every part of the server does (`tyger_spawn_io`): a new process group led by
/// the child, default signal dispositions and an empty mask, and no descriptor of ours but its stdin, stdout and
/// stderr (everything above 2 is closed in the child, `O_CLOEXEC` or not).
public enum ProcessSpawn {
    /// The executable `program` names: itself when it contains a `/`, else the first `dir/program` that is executable
    /// for the directories of `searchPath` (`PATH`; `/usr/local/bin:/usr/bin:/bin` when `nil`), relative ones taken
    /// from `workingDirectory`; `nil` when none is.
    public static func find(_ program: String, searchPath: String?, workingDirectory: String) -> String? {
        if program.contains("/") { return program }
        for dir in (searchPath ?? defaultSearchPath).split(separator: ":") {
            let candidate = (dir.hasPrefix("/") ? String(dir) : workingDirectory + "/" + dir) + "/" + program
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The `PATH` searched when there is none.
    public static let defaultSearchPath = "/usr/local/bin:/usr/bin:/bin"

    /// Starts `path` (no `PATH` search: ``find(_:searchPath:workingDirectory:)``) with `arguments` (its `argv[0]` first) and exactly `environment`.
    ///
    /// - Parameters:
    ///   - workingDirectory: The child's working directory; `nil` keeps ours.
    ///   - stdin: The descriptor the child reads as stdin; `nil` for `/dev/null`.
    /// - Returns: The child's pid (also its process group's ID).
    /// - Throws: `TygerIOError` with the `errno` of a failed spawn.
    public static func start(
        _ path: String,
        arguments: [String],
        environment: [String: String],
        workingDirectory: String? = nil,
        stdin: Int32? = nil,
        stdout: Int32,
        stderr: Int32
    ) throws -> Int32 {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                tyger_spawn_io(path, a.baseAddress, e.baseAddress, workingDirectory, stdin ?? -1, stdout, stderr, &pid)
            }
        }
        guard rc == 0 else {
            throw TygerIOError(.system, "cannot start \(path): \(String(cString: strerror(rc)))", errno: rc)
        }
        return pid
    }
}
