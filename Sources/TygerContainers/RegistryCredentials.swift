public import Foundation

/// Registry credentials from the Docker client configuration, as `docker pull` finds them:
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, entry `auths[<registry>]` with `auth`
/// (base64 of `user:password`), `username` + `password`, or `identitytoken`.
///
/// The engine API takes them per pull in `X-Registry-Auth`: a Docker daemon reads no configuration of its own, and a
/// Podman service uses the header when given. Credential helpers (`credsStore`, `credHelpers`) are not run.
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
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        let directory =
            environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.docker"
        guard let data = FileManager.default.contents(atPath: directory + "/config.json"),
            let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let auths = config["auths"] as? [String: Any]
        else { return nil }
        let registry = registry(of: reference)
        // Keys are written with or without a scheme (`ghcr.io`, `https://ghcr.io`).
        let entry =
            auths[registry] ?? auths["https://" + registry] ?? auths["http://" + registry]
            ?? (registry.hasPrefix("https://index.docker.io") ? auths["docker.io"] : nil)
        guard let entry = entry as? [String: Any] else { return nil }
        var auth: [String: String] = ["serveraddress": registry]
        if let token = entry["identitytoken"] as? String, !token.isEmpty {
            auth["identitytoken"] = token
        } else if let encoded = entry["auth"] as? String, let decoded = Data(base64Encoded: encoded),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            auth["username"] = String(text[..<colon])
            auth["password"] = String(text[text.index(after: colon)...])
        } else if let username = entry["username"] as? String, let password = entry["password"] as? String {
            auth["username"] = username
            auth["password"] = password
        } else {
            return nil
        }
        guard let json = try? JSONSerialization.data(withJSONObject: auth, options: [.sortedKeys]) else { return nil }
        return json.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
    }
}
