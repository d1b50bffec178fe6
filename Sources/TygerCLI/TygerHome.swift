import Foundation
import TygerCore
import TygerIO
import TygerModel

/// Where the CLI keeps its state: `$TYGER_HOME`, else `$XDG_DATA_HOME/tyger`, else `~/.local/share/tyger`.
///
/// - `login.json`: the server to talk to (absent: the embedded local server).
/// - `server/`: the embedded server's data directory (``DataDirectoryLayout``: `api.sock`, databases, keys,
///   buffers), plus the CLI's `server.pid` and `server.log` of the server it started.
/// - `server.lock`: serializes CLIs that start the embedded server.
enum TygerHome {
    static var path: String {
        let env = ProcessInfo.processInfo.environment
        if let home = env["TYGER_HOME"], !home.isEmpty { return home }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/tyger" }
        return NSHomeDirectory() + "/.local/share/tyger"
    }

    static var loginFile: String { path + "/login.json" }
    /// The embedded server's data directory.
    static var server: DataDirectoryLayout { DataDirectoryLayout(root: path + "/server") }
    /// The lock CLIs take before starting the embedded server.
    static var serverLockFile: String { path + "/server.lock" }
}

/// The saved login: which server, and how to authenticate.
struct LoginState: Codable, Equatable {
    /// `http+unix:///…/api.sock:` or `https://host:port`.
    var serverURL: String
    var token: String?
    /// PEM of extra trusted CA certificates, for servers with their own CA.
    var caCertificate: String?

    static func load() throws -> LoginState? {
        guard let data = FileManager.default.contents(atPath: TygerHome.loginFile) else { return nil }
        do { return try TygerJSON.makeDecoder().decode(LoginState.self, from: data) } catch {
            throw CommandFailure("the login file \(TygerHome.loginFile) is damaged: run 'tyger login' again")
        }
    }

    func save() throws {
        try FileManager.default.createDirectory(atPath: TygerHome.path, withIntermediateDirectories: true)
        let data = try TygerJSON.makePrettyEncoder().encode(self)
        let temp = TygerHome.loginFile + ".tmp"
        let created = FileManager.default.createFile(
            atPath: temp,
            contents: data,
            attributes: [.posixPermissions: 0o600]
        )
        guard created else {
            throw CommandFailure("cannot write \(temp)")
        }
        // rename(2), not FileManager.replaceItemAt, which fails on Linux when there is no login file yet.
        do { try PathOps.rename(temp, to: TygerHome.loginFile) } catch let error as TygerIOError {
            try? FileManager.default.removeItem(atPath: temp)
            throw CommandFailure("cannot write the login file: \(error.message)")
        }
    }

    /// Writes the login's CA certificate to `$TYGER_HOME/ca.pem` for the HTTP client; `nil` without one.
    func caCertificateFile() throws -> String? {
        guard let caCertificate else { return nil }
        let path = TygerHome.path + "/ca.pem"
        try caCertificate.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func remove() throws {
        if FileManager.default.fileExists(atPath: TygerHome.loginFile) {
            try FileManager.default.removeItem(atPath: TygerHome.loginFile)
        }
    }
}
