import Foundation
import Logging
import TygerClient
import TygerCore
import TygerIO
import TygerModel
import TygerStorage

/// Resolves a `buffer read/write` argument to a blob store, as upstream does:
/// 1. an absolute URL is used directly (`file://PATH` for the embedded local store);
/// 2. otherwise, a file smaller than 2 KiB holding such a URL;
/// 3. otherwise a buffer ID, which needs a server.
///
/// Resolutions are scoped: ``withResolved(_:write:accessTTL:allowFastPath:_:)`` hands the target to a closure and
/// shuts down whatever HTTP client it needed when the closure returns or throws.
enum BufferLocation {
    /// A resolved target.
    struct Resolved: Sendable {
        var store: any BlobStore
        /// Whether the write pipeline may create the store (a `file://` directory).
        var createsContainer = false
        /// Set for ephemeral buffers: bytes go through the run's relay, not through blobs.
        var relay: RelayClient? = nil
        /// Set for ephemeral buffers whose run is on this machine: the run's named pipe, used directly (no HTTP).
        var fifoPath: String? = nil

        /// Whether it is an ephemeral buffer (relay or pipe): bytes that are never stored, so no offset and no resume.
        var isEphemeral: Bool { relay != nil || fifoPath != nil }
    }

    /// How the blob requests of a network store are paced (``TransferPacer``): the request timeout and the most
    /// requests in flight (the transfer's `dop`). Set by the commands for the stores they resolve.
    @TaskLocal static var pacing = Pacing()

    struct Pacing: Sendable {
        var timeout = RequestTimeout.adaptive
        var inFlight = 16
    }

    /// `store` with its blob requests paced (``pacing``); as it is with `TYGER_PACING=0` (for comparisons).
    static func paced(_ store: any BlobStore) -> any BlobStore {
        guard pacingEnabled else { return store }
        return PacedBlobStore(store, pacer: TransferPacer(timeout: pacing.timeout, maxInFlight: pacing.inFlight))
    }

    private static let pacingEnabled = ProcessInfo.processInfo.environment["TYGER_PACING"] != "0"

    /// Resolves `argument` and runs `body` with it.
    ///
    /// - Parameters:
    ///   - write: Whether a write URL is needed (buffer IDs).
    ///   - accessTTL: How long a buffer ID's access URL is valid (`D.HH:MM:SS`); the server's default when `nil`.
    ///   - allowFastPath: Whether a buffer ID may be reached without HTTP: the embedded server's buffer directory,
    ///     or the local pipe the server names for an ephemeral buffer.
    /// - Throws: `UsageError` for a malformed URL argument, `CommandFailure` for an argument that is none of the
    ///   three forms, and what resolution or `body` throw.
    static func withResolved<T>(
        _ argument: String,
        write: Bool,
        accessTTL: String? = nil,
        allowFastPath: Bool = true,
        _ body: (Resolved) async throws -> T
    ) async throws -> T {
        if argument.isEmpty { throw UsageError("a buffer ID, access URL or file holding an access URL is required") }
        if isURL(argument) {
            if accessTTL != nil { throw UsageError("--access-ttl can only be used with a buffer ID") }
            return try await withURL(argument, refreshFile: nil, body)
        }
        if let url = readAccessFile(argument) {
            guard isURL(url) else { throw CommandFailure("the file '\(argument)' does not hold an access URL") }
            return try await withURL(url, refreshFile: argument, body)
        }
        guard argument.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            // A malformed ID or a file that does not exist: the world decides, so exit 1.
            throw CommandFailure("'\(argument)' is not a buffer ID, an access URL, or a file holding an access URL")
        }
        return try await withConnection { connection in
            try await withResolved(
                argument,
                write: write,
                accessTTL: accessTTL,
                allowFastPath: allowFastPath,
                connection: connection,
                body
            )
        }
    }

    /// Resolves the buffer ID `id` through `connection` and runs `body` with it.
    static func withResolved<T>(
        _ id: String,
        write: Bool,
        accessTTL: String? = nil,
        allowFastPath: Bool = true,
        connection: Connection,
        _ body: (Resolved) async throws -> T
    ) async throws -> T {
        let access = try await bufferAccess(id: id, write: write, ttl: accessTTL, connection: connection)
        if allowFastPath, let layout = connection.embedded {
            let directory = layout.bufferPath(id)
            if PathOps.isAccessible(directory, write: write) {
                logger.debug("Using the local fast path", metadata: ["directory": "\(directory)"])
                return try await body(Resolved(store: FileBlobStore(directory: directory)))
            }
        }
        let url: ServiceURL
        do { url = try ServiceURL(access.uri) } catch let e as TygerClientError { throw CommandFailure(e.message) }
        let transport = connection.client.transport
        if RelayClient.isRelay(url) {
            var resolved = Resolved(
                store: HTTPBlobStore(containerURL: url, transport: transport),
                relay: RelayClient(url: url, transport: transport)
            )
            if allowFastPath, let localPath = access.localPath, await waitForPipe(localPath) {
                logger.debug("Using the run's pipe directly", metadata: ["pipe": "\(localPath)"])
                resolved.fifoPath = localPath
            }
            return try await body(resolved)
        }
        let refresh: @Sendable () async throws -> ServiceURL = {
            try ServiceURL(try await bufferAccess(id: id, write: write, ttl: accessTTL, connection: connection).uri)
        }
        return try await body(Resolved(store: try await store(url, transport: transport, refreshURL: refresh)))
    }

    /// The store behind an access URL: the server's data plane, or, for a buffer kept in an S3-compatible store
    /// (`…/s3/<id>?…`), the store itself with requests the server presigns.
    private static func store(
        _ url: ServiceURL,
        transport: HTTPTransport,
        refreshURL: (@Sendable () async throws -> ServiceURL)?
    ) async throws -> any BlobStore {
        guard S3Presigner.isAccessURL(url) else {
            return paced(HTTPBlobStore(containerURL: url, transport: transport, refreshURL: refreshURL))
        }
        let presigner = S3Presigner(accessURL: url, transport: transport, refreshURL: refreshURL)
        let description = try await presigner.describe()
        return paced(
            S3BlobStore(
                client: S3Client(presigner: presigner, description: description, transport: transport),
                container: description.buffer
            )
        )
    }

    /// Waits (up to 30 s) for the pipe the server named to exist and be usable by us: the run creates it when it
    /// starts. `false` when it never is (then the relay is used).
    private static func waitForPipe(_ path: String) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if PathOps.isAccessible(path, write: true) { return true }
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return false }
        }
        return false
    }

    /// Whether `text` is an absolute URL: an RFC 3986 scheme (a letter, then letters, digits, `+`, `-` or `.`, so
    /// `s3://` is a URL too) followed by `://`.
    static func isURL(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), text.first?.isLetter == true,
            text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }),
            text[..<colon].count >= 2, text[colon...].hasPrefix("://")
        else { return false }
        return true
    }

    /// Runs `body` with the store of an absolute URL (an HTTP client for http, https and http+unix URLs).
    ///
    /// - Parameter refreshFile: The access file the URL came from: read again when the URL is refused.
    private static func withURL<T>(
        _ text: String,
        refreshFile: String?,
        _ body: (Resolved) async throws -> T
    ) async throws -> T {
        let colon = text.firstIndex(of: ":")!  // isURL(text) holds
        let scheme = text[..<colon].lowercased()
        var rest = String(text[text.index(colon, offsetBy: 3)...])
        // A bad URL typed on the command line is a usage error; one read from an access file is the file's fault.
        func bad(_ message: String) -> any Error {
            refreshFile.map { CommandFailure("\($0): \(message)") } ?? UsageError(message)
        }
        if ["http", "https", "http+unix"].contains(scheme) {
            let url: ServiceURL
            do { url = try ServiceURL(text) } catch let e as TygerClientError { throw bad(e.message) }
            // The login's CA also vouches for the access URLs its server hands out (https with a private CA).
            let caPath = scheme == "https" ? (try? LoginState.load()?.caCertificateFile()) ?? nil : nil
            var refresh: (@Sendable () async throws -> ServiceURL)?
            if let refreshFile {
                // Access files are rewritten by whoever issued them: read it again when the URL is refused.
                refresh = {
                    guard let url = readAccessFile(refreshFile) else {
                        throw CommandFailure("cannot read the access file '\(refreshFile)'")
                    }
                    return try ServiceURL(url)
                }
            }
            return try await HTTPTransport.withTransport(caCertificatePath: caPath) { transport in
                // An ephemeral buffer's access URL leads to its run's relay (on whichever server runs it).
                if RelayClient.isRelay(url) {
                    return try await body(
                        Resolved(
                            store: HTTPBlobStore(containerURL: url, transport: transport),
                            relay: RelayClient(url: url, transport: transport)
                        )
                    )
                }
                return try await body(Resolved(store: try await store(url, transport: transport, refreshURL: refresh)))
            }
        }
        if scheme == "s3" {
            let (location, buffer) = try s3Buffer(text, bad: bad)
            guard let credentials = S3Credentials.fromEnvironment() else {
                throw bad("s3:// URLs need credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            return try await HTTPTransport.withTransport { transport in
                let client = S3Client(location: location, credentials: credentials, transport: transport)
                return try await body(
                    Resolved(store: paced(S3BlobStore(client: client, container: buffer)), createsContainer: true)
                )
            }
        }
        guard scheme == "file" else {
            throw bad(
                "unsupported access URL scheme '\(scheme)': use file://, s3://, http://, https:// or http+unix://"
            )
        }
        if let q = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = String(rest[..<q]) }
        if rest.hasPrefix("localhost/") { rest.removeFirst("localhost".count) }
        guard let path = TextEncoding.percentDecoded(rest), !path.isEmpty else {
            throw bad("invalid file URL '\(text)': expected file:///absolute/path or file://relative/path")
        }
        return try await body(
            Resolved(store: FileBlobStore(directory: path), createsContainer: true)
        )
    }
}

/// The store and buffer of `s3://BUCKET/[PREFIX/]BUFFER[?endpoint=URL][&region=R]`: the buffer is the last segment.
private func s3Buffer(_ text: String, bad: (String) -> any Error) throws -> (S3Location, String) {
    let form = "expected s3://BUCKET/[PREFIX/]BUFFER?endpoint=http://HOST:PORT"
    let query = text.firstIndex(of: "?").map { String(text[$0...]) } ?? ""
    var path = String(text.prefix(while: { $0 != "?" }))
    while path.hasSuffix("/") { path.removeLast() }
    guard let slash = path.lastIndex(of: "/"), path[..<slash].count > "s3:/".count else {
        throw bad("the s3:// URL '\(text)' names no buffer: \(form)")
    }
    let buffer = String(path[path.index(after: slash)...])
    guard (try? BlobName.validate(buffer)) != nil else {
        throw bad("'\(buffer)' in '\(text)' is not a valid buffer name: \(form)")
    }
    do {
        return (try S3Location(parsing: String(path[..<slash]) + query), buffer)
    } catch let error as BlobStoreError {
        throw bad(error.message)
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

/// The access URL held by a small regular file (what `buffer access` writes), trimmed; `nil` when `path` is not
/// such a file.
private func readAccessFile(_ path: String) -> String? {
    PathOps.contentsOfSmallRegularFile(path, limit: 2048).map {
        String(decoding: $0, as: UTF8.self).trimmingCharacters(in: " \r\n\t")
    }
}
