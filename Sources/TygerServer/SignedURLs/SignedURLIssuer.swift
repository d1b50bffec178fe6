import Crypto
import TygerCore
public import TygerModel

/// Issues local signed access URLs ("local SAS", upstream's `LocalSasHandler`), for the control plane to hand out.
///
/// A URL grants its permissions on exactly one container until it expires:
/// `<endpoint>/containers/<id>?api-version=1.0&sv=0.1.0&sp=<perm>&st=<start>&se=<expiry>&sig=<signature>`, where
/// `sig` is the base64 DER ECDSA P-256/SHA-256 signature of `sv\ncontainerId\nsp\nst\nse`.
///
/// ```swift
/// let issuer = SignedURLIssuer(keys: keys)
/// let url = try issuer.accessURL(
///     containerId: "abc123", writeable: true, ttl: .seconds(3600), endpoint: "http+unix:///data/api.sock:")
/// ```
public struct SignedURLIssuer: Sendable {
    /// The signature scheme version written in `sv`.
    public static let version = "0.1.0"
    /// The shortest TTL accepted (as upstream).
    public static let minimumTTL: Duration = .seconds(30)
    /// The longest TTL accepted. Upstream allows 1 h; we allow a day so long runs need fewer refreshes.
    public static let maximumTTL: Duration = .seconds(24 * 3600)
    /// The default TTL (as upstream).
    public static let defaultTTL: Duration = .seconds(3600)

    private let key: P256.Signing.PrivateKey
    private let clock: WallClock

    /// An issuer signing with the primary key of `keys`.
    ///
    /// - Parameters:
    ///   - keys: The signing keys.
    ///   - clock: Where `st` comes from.
    public init(keys: SigningKeys, clock: WallClock = .system) {
        self.key = keys.primary
        self.clock = clock
    }

    /// Returns an access URL for a buffer's container: read (`sp=r`) or read and write (`sp=cr`).
    ///
    /// - Parameters:
    ///   - containerId: The buffer ID (`^[a-zA-Z0-9]{3,63}$`).
    ///   - writeable: Whether the URL may create blobs.
    ///   - ttl: How long the URL is valid, from 30 s to 24 h.
    ///   - endpoint: The data plane's base: `http+unix://<socket path>:` or `http(s)://host:port`.
    /// - Returns: The URL.
    /// - Throws: `TygerServerError` `.invalidArgument` for a bad container ID, TTL or endpoint.
    public func accessURL(
        containerId: String,
        writeable: Bool,
        ttl: Duration = defaultTTL,
        endpoint: String
    ) throws
        -> String
    {
        try url(
            containerId: containerId,
            permissions: writeable ? [.createBlob, .readBlob] : [.readBlob],
            ttl: ttl,
            endpoint: endpoint
        )
    }

    /// Returns a signed URL for any permissions (container-level `C`/`R`/`D` for managing containers over HTTP).
    ///
    /// - Parameters:
    ///   - containerId: The buffer ID.
    ///   - permissions: The permissions to grant; not empty.
    ///   - ttl: How long the URL is valid, from 30 s to 24 h.
    ///   - endpoint: The data plane's base URL.
    /// - Returns: The URL.
    /// - Throws: `TygerServerError` `.invalidArgument` for a bad container ID, empty permissions, TTL or endpoint.
    public func url(
        containerId: String,
        permissions: Set<SignedURLPermission>,
        ttl: Duration,
        endpoint: String
    ) throws
        -> String
    {
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("http://") || base.hasPrefix("https://") || base.hasPrefix("http+unix://") else {
            throw TygerServerError(
                .invalidArgument,
                "the data-plane endpoint must start with http://, https:// or http+unix://: \(endpoint)"
            )
        }
        return base + "/containers/" + containerId + "?"
            + (try query(containerId: containerId, permissions: permissions, ttl: ttl))
    }

    /// Returns only the signed query string (`api-version=1.0&sv=…&sig=…`), percent-encoded.
    ///
    /// - Throws: `TygerServerError` `.invalidArgument` for a bad container ID, empty permissions or TTL.
    public func query(containerId: String, permissions: Set<SignedURLPermission>, ttl: Duration) throws -> String {
        guard ContainerName.isValid(containerId) else {
            throw TygerServerError(
                .invalidArgument,
                "invalid container ID '\(containerId)': expected 3 to 63 letters and digits"
            )
        }
        guard !permissions.isEmpty else { throw TygerServerError(.invalidArgument, "a signed URL needs a permission") }
        guard ttl >= Self.minimumTTL && ttl <= Self.maximumTTL else {
            throw TygerServerError(
                .invalidArgument,
                "the access TTL must be between 30 seconds and 24 hours, not \(ttl)"
            )
        }
        let start = clock.seconds()
        let expiry = start + ttl.components.seconds
        let sp = SignedURLPermission.spValue(permissions)
        let st = RFC3339.formatSeconds(start)
        let se = RFC3339.formatSeconds(expiry)
        let payload = SignedURLValidator.stringToSign(
            version: Self.version,
            containerId: containerId,
            sp: sp,
            st: st,
            se: se
        )
        let signature: String
        do {
            signature = Base64.encode(Array(try key.signature(for: Array(payload.utf8)).derRepresentation))
        } catch {
            // Signing with a valid in-memory P-256 key does not fail; if BoringSSL ever does, say so plainly.
            throw TygerServerError(.signingKey, "cannot sign the access URL", cause: error)
        }
        return "api-version=\(APIVersion.v1_0)&sv=\(Self.version)&sp=\(sp)&st=\(percentEncode(st))"
            + "&se=\(percentEncode(se))&sig=\(percentEncode(signature))"
    }

    /// Percent-encodes everything but unreserved characters (RFC 3986).
    func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
