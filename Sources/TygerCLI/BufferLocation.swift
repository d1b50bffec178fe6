#if canImport(Glibc)
import Glibc
import TygerCore
#endif
import TygerStorage
import TygerClient
import NIOHTTP1

/// Resolves a `buffer read/write` argument to a blob store, as upstream does:
/// 1. an absolute URL is used directly (`file://PATH` for the embedded local store);
/// 2. otherwise, a file smaller than 2 KiB holding such a URL;
/// 3. otherwise a buffer ID, which needs a server.
enum BufferLocation {
    /// A resolved target: the store, and what to close afterwards.
    struct Resolved {
        var store: any BlobStore
        var transport: HTTPTransport?
        var isBufferID: Bool
        /// Set for ephemeral buffers: bytes go through the run's relay, not through blobs.
        var relay: RelayClient? = nil
        /// Set for ephemeral buffers of the embedded server: the run's named pipe, used directly (no HTTP).
        var fifoPath: String? = nil

        func close() async { await transport?.shutdown() }
    }

    /// Resolves `argument`.
    /// - Parameters:
    ///   - write: Whether a write URL is needed (buffer IDs).
    ///   - allowFastPath: Whether a buffer ID on the embedded server may be reached through its directory.
    static func resolve(_ argument: String, write: Bool, accessTTL: String? = nil, allowFastPath: Bool = true) async throws -> Resolved {
        if argument.isEmpty { throw UsageError("a buffer ID, access URL or file holding an access URL is required") }
        if let resolved = try fromURL(argument) {
            if accessTTL != nil { throw UsageError("--access-ttl can only be used with a buffer ID") }
            return resolved
        }
        if let contents = readSmallFile(argument) {
            let url = contents.trimmingCharacters(in: " \r\n\t")
            guard var resolved = try fromURL(url, refreshFile: argument) else {
                throw UsageError("the file '\(argument)' does not hold an access URL")
            }
            resolved.isBufferID = false
            return resolved
        }
        guard argument.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw UsageError("'\(argument)' is not a buffer ID, an access URL, or a file holding an access URL")
        }
        let connection = try await Connection.open()
        do {
            let uri = try await accessURL(id: argument, write: write, ttl: accessTTL, connection: connection)
            let directory = TygerHome.serverDirectory + "/buffers/" + argument
            if allowFastPath, connection.isEmbedded, access(directory, write ? (R_OK | W_OK) : R_OK) == 0 {
                await connection.close()
                Log.shared.debug("Using the local fast path", ["directory": directory])
                return Resolved(store: FileBlobStore(directory: directory), transport: nil, isBufferID: true)
            }
            let url = try ServiceURL(uri)
            if RelayClient.isRelay(url) {
                let relay = RelayClient(url: url, transport: connection.client.transport)
                if allowFastPath, connection.isEmbedded,
                    let fifo = try await localPipe(ephemeralID: argument, connection: connection)
                {
                    Log.shared.debug("Using the run's pipe directly", ["pipe": fifo])
                    return Resolved(
                        store: HTTPBlobStore(containerURL: url, transport: connection.client.transport),
                        transport: connection.client.transport, isBufferID: true, relay: relay, fifoPath: fifo)
                }
                return Resolved(
                    store: HTTPBlobStore(containerURL: url, transport: connection.client.transport),
                    transport: connection.client.transport, isBufferID: true, relay: relay)
            }
            let store = HTTPBlobStore(containerURL: url, transport: connection.client.transport) {
                try ServiceURL(try await accessURL(id: argument, write: write, ttl: accessTTL, connection: connection))
            }
            return Resolved(store: store, transport: connection.client.transport, isBufferID: true)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The named pipe of an ephemeral buffer (`run-<id>-temp-<x>`) of the embedded server, once the run has made it;
    /// nil when it cannot be used directly (then the HTTP relay is used).
    static func localPipe(ephemeralID: String, connection: Connection) async throws -> String? {
        let parts = ephemeralID.split(separator: "-")
        guard parts.count == 4, parts[0] == "run", let runID = Int64(parts[1]) else { return nil }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let response = try await connection.client.call(.GET, "/runs/\(runID)")
            guard let run = try JSONOutput.parse(response.text) as? [String: Any] else { return nil }
            let buffers = (run["job"] as? [String: Any])?["buffers"] as? [String: Any] ?? [:]
            guard let parameter = buffers.first(where: { ($0.value as? String) == ephemeralID })?.key else { return nil }
            let path = TygerHome.serverDirectory + "/runs/\(runID)/pipes/\(parameter).pipe"
            if access(path, R_OK | W_OK) == 0 { return path }
            let status = run["status"] as? String ?? ""
            if ["Failed", "Succeeded", "Canceled"].contains(status) { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Parses an absolute URL; nil when `text` is not one.
    static func fromURL(_ text: String, refreshFile: String? = nil) throws -> Resolved? {
        // RFC 3986 scheme: a letter, then letters, digits, "+", "-" or "." (so `s3://` is a URL too).
        guard let colon = text.firstIndex(of: ":"), text.first?.isLetter == true,
            text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }),
            text[..<colon].count >= 2, text[colon...].hasPrefix("://")
        else { return nil }
        let scheme = text[..<colon].lowercased()
        var rest = String(text[text.index(colon, offsetBy: 3)...])
        if ["http", "https", "http+unix"].contains(scheme) {
            let url: ServiceURL
            do { url = try ServiceURL(text) } catch let e as TygerClientError { throw UsageError(e.message) }
            // The login's CA also vouches for the access URLs its server hands out (https with a private CA).
            let caPath = scheme == "https" ? (try? LoginState.load()?.caCertificateFile()) ?? nil : nil
            let transport = try HTTPTransport(caCertificatePath: caPath)
            var refresh: (@Sendable () async throws -> ServiceURL)?
            if let refreshFile {
                // Access files are rewritten by whoever issued them: read it again when the URL is refused.
                refresh = {
                    guard let text = readSmallFile(refreshFile)?.trimmingCharacters(in: " \r\n\t") else {
                        throw UsageError("cannot read the access file '\(refreshFile)'")
                    }
                    return try ServiceURL(text)
                }
            }
            return Resolved(store: HTTPBlobStore(containerURL: url, transport: transport, refreshURL: refresh), transport: transport, isBufferID: false)
        }
        guard scheme == "file" else {
            throw UsageError("unsupported access URL scheme '\(scheme)': use file://, http://, https:// or http+unix://")
        }
        if let q = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = String(rest[..<q]) }
        if rest.hasPrefix("localhost/") { rest.removeFirst("localhost".count) }
        guard let path = percentDecode(rest), !path.isEmpty else {
            throw UsageError("invalid file URL '\(text)': expected file:///absolute/path or file://relative/path")
        }
        return Resolved(store: FileBlobStore(directory: path), transport: nil, isBufferID: false)
    }

    private static func percentDecode(_ s: String) -> String? { TextEncoding.percentDecoded(s) }

    private static func readSmallFile(_ path: String) -> String? {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 2048 else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let n = read(fd, &buffer, 2048)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        // By scalar: "\r\n" is one Character, so `set.contains(Character("\n"))` is false for " \r\n\t".
        func inSet(_ c: Character) -> Bool { c.unicodeScalars.allSatisfy { set.unicodeScalars.contains($0) } }
        while let f = s.first, inSet(f) { s = s.dropFirst() }
        while let l = s.last, inSet(l) { s = s.dropLast() }
        return String(s)
    }
}
