public import Foundation
import TygerIO

/// Registry credentials from the Docker client configuration, as `docker pull` finds them in
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`:
/// 1. `credHelpers[<registry>]` names a credential helper for the image's registry, else `credsStore` one for every
///    registry: `docker-credential-<name> get` (found on `PATH`) is given the registry on stdin and prints
///    `{"Username": …, "Secret": …}` (`Username` `<token>`: the secret is an identity token). A helper that fails
///    (no credentials for that registry, for one) means no credentials, as for `docker pull`.
/// 2. Otherwise `auths[<registry>]` with `auth` (base64 of `user:password`), `username` + `password`, or
///    `identitytoken`.
///
/// The engine API takes them per pull in `X-Registry-Auth`: a Docker daemon reads no configuration of its own, and a
/// Podman service uses the header when given.
public enum RegistryCredentials {
    /// The registry of an image reference, as `auths` keys it: its first component when that is a host, else Docker
    /// Hub (`https://index.docker.io/v1/`).
    static func registry(of reference: String) -> String {
        let components = reference.split(separator: "/", maxSplits: 1)
        if components.count == 2 {
            let first = components[0]
            if first.contains(".") || first.contains(":") || first == "localhost" { return String(first) }
        }
        return "https://index.docker.io/v1/"
    }

    /// The `X-Registry-Auth` value for pulling `reference` (base64url of the auth JSON), or `nil` without credentials.
    public static func header(
        for reference: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        helperTimeout: TimeInterval = RegistryCredentials.helperTimeout
    ) -> String? {
        let directory =
            environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.docker"
        guard let data = FileManager.default.contents(atPath: directory + "/config.json"),
            let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        let registry = registry(of: reference)
        let helpers = config["credHelpers"] as? [String: Any] ?? [:]
        let host = registry.hasPrefix("https://index.docker.io") ? "index.docker.io" : registry
        let found: [String: String]?
        if let helper = (helpers[registry] ?? helpers[host]) as? String ?? (config["credsStore"] as? String),
            !helper.isEmpty
        {
            found = fromHelper(helper, registry: registry, environment: environment, timeout: helperTimeout)
        } else {
            found = fromAuths(config["auths"] as? [String: Any] ?? [:], registry: registry)
        }
        guard let found else { return nil }
        let auth = found.merging(["serveraddress": registry]) { old, _ in old }
        guard let json = try? JSONSerialization.data(withJSONObject: auth, options: [.sortedKeys]) else { return nil }
        return json.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
    }

    /// The credentials of an `auths` entry (keys are written with or without a scheme: `ghcr.io`, `https://ghcr.io`).
    static func fromAuths(_ auths: [String: Any], registry: String) -> [String: String]? {
        let entry =
            auths[registry] ?? auths["https://" + registry] ?? auths["http://" + registry]
            ?? (registry.hasPrefix("https://index.docker.io") ? auths["docker.io"] : nil)
        guard let entry = entry as? [String: Any] else { return nil }
        if let token = entry["identitytoken"] as? String, !token.isEmpty { return ["identitytoken": token] }
        if let encoded = entry["auth"] as? String, let decoded = Data(base64Encoded: encoded),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            return ["username": String(text[..<colon]), "password": String(text[text.index(after: colon)...])]
        }
        if let username = entry["username"] as? String, let password = entry["password"] as? String {
            return ["username": username, "password": password]
        }
        return nil
    }

    /// How long a credential helper may take.
    public static let helperTimeout: TimeInterval = 10

    /// The most a helper may print: answers are about 100 bytes; a token-based one a few KiB.
    static let helperOutputLimit = 1 << 20

    /// Runs `docker-credential-<helper> get` for `registry`; `nil` when the helper is not on `PATH`, fails, takes
    /// longer than `timeout` (its process group is killed), or prints something else than its JSON answer.
    ///
    /// The helper gets the registry on stdin and writes its answer to anonymous in-memory files, not pipes
    /// (``ProcessSpawn/runCapturing(_:arguments:environment:input:timeoutMilliseconds:outputLimit:captureError:)``):
    /// no size of answer can block it, and a child it leaves running (an agent) cannot hold the answer back. Like a
    /// run's processes it gets no descriptor of the server's but those three (`tyger_spawn_io`).
    static func fromHelper(
        _ helper: String,
        registry: String,
        environment: [String: String],
        timeout: TimeInterval
    ) -> [String: String]? {
        guard !helper.contains("/") else { return nil }
        guard
            let path = ProcessSpawn.find(
                "docker-credential-" + helper,
                searchPath: environment["PATH"],
                workingDirectory: FileManager.default.currentDirectoryPath
            )
        else { return nil }
        guard
            let run = try? ProcessSpawn.runCapturing(
                path,
                arguments: [path, "get"],
                environment: environment,
                input: Array(registry.utf8),
                timeoutMilliseconds: Int32(min(timeout, 3600) * 1000),
                outputLimit: Self.helperOutputLimit,
                captureError: false
            ),
            run.code == 0, !run.output.isEmpty
        else { return nil }
        guard let answer = try? JSONSerialization.jsonObject(with: Data(run.output)) as? [String: Any],
            let username = answer["Username"] as? String, let secret = answer["Secret"] as? String
        else { return nil }
        return username == "<token>" ? ["identitytoken": secret] : ["username": username, "password": secret]
    }
}
