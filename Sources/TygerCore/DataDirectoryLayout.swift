/// Where everything lives in a server's data directory: the one place that names these paths. The server, the run
/// engine, the token command and the CLI's embedded-server code all use it.
///
/// ```
/// <root>/                     mode 0700
///   api.sock                  the unix socket (mode 0600)
///   control-plane.sqlite      buffers
///   runs.sqlite               codespecs and runs
///   keys/                     signing-primary.pem (0600), optional signing-secondary.pem
///   tokens.json               bearer tokens, SHA-256 only (0600)
///   buffers/<id>/             one blob store per buffer
///   runs/<id>/                a run's private directory: pipes/<parameter>.pipe, work/, processes
///   logs/<id>.log             a run's log
/// ```
///
/// A run's pipes are private to the server: clients learn a pipe's path from the server (the run's ephemeral
/// buffer access), never by rebuilding it.
public struct DataDirectoryLayout: Sendable, Hashable {
    /// The data directory, without trailing slashes.
    public let root: String

    /// Creates the layout of `root`.
    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// `<root>/api.sock`.
    public var socketPath: String { root + "/api.sock" }
    /// `<root>/control-plane.sqlite`: the buffers database.
    public var controlPlaneDatabasePath: String { root + "/control-plane.sqlite" }
    /// `<root>/runs.sqlite`: the codespecs and runs database.
    public var runsDatabasePath: String { root + "/runs.sqlite" }
    /// `<root>/keys`.
    public var keysPath: String { root + "/keys" }
    /// `<root>/tokens.json`.
    public var tokensPath: String { root + "/tokens.json" }
    /// `<root>/buffers`.
    public var buffersPath: String { root + "/buffers" }
    /// `<root>/buffers/<id>`: one buffer's blobs.
    public func bufferPath(_ id: String) -> String { buffersPath + "/" + id }
    /// `<root>/runs`.
    public var runsPath: String { root + "/runs" }
    /// `<root>/runs/<id>`: a run's private directory.
    public func runPath(_ id: Int64) -> String { runsPath + "/\(id)" }
    /// `<root>/runs/<id>/pipes`.
    public func runPipesPath(_ id: Int64) -> String { runPath(id) + "/pipes" }
    /// `<root>/runs/<id>/pipes/<parameter>.pipe`: the named pipe of one buffer parameter.
    public func runPipePath(_ id: Int64, parameter: String) -> String { runPipesPath(id) + "/\(parameter).pipe" }
    /// `<root>/runs/<id>/work`: the default working directory of a run's processes.
    public func runWorkPath(_ id: Int64) -> String { runPath(id) + "/work" }
    /// `<root>/runs/<id>/processes`: the process IDs of a run, for recovery after a restart.
    public func runProcessesPath(_ id: Int64) -> String { runPath(id) + "/processes" }
    /// `<root>/logs`.
    public var logsPath: String { root + "/logs" }
    /// `<root>/logs/<id>.log`.
    public func runLogPath(_ id: Int64) -> String { logsPath + "/\(id).log" }
}
