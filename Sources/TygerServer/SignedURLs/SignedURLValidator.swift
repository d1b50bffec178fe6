public import Crypto
import TygerCore
public import TygerModel

/// Checks local signed access URLs on the data plane (upstream's `LocalSasHandler` validation).
///
/// A URL is accepted when `sv` is `0.1.0`, `sp`, `st`, `se` and `sig` are present and well-formed,
/// `st <= now <= se` (no clock-skew allowance, as upstream), the signature over
/// `sv\ncontainerId\nsp\nst\nse` verifies with the primary or the secondary key for the container being accessed,
/// and `sp` holds the permission the operation needs.
public struct SignedURLValidator: Sendable {
    private let keys: [P256.Signing.PublicKey]
    private let clock: WallClock

    /// A validator accepting signatures of any of `keys`.
    ///
    /// - Parameters:
    ///   - keys: The signing keys; their primary and secondary public keys are accepted.
    ///   - clock: Where "now" comes from, for the validity window.
    ///   - trusted: Other keys whose signatures are accepted too (a data plane's control planes').
    public init(keys: SigningKeys, trusted: [P256.Signing.PublicKey] = [], clock: WallClock = .system) {
        self.keys = keys.verificationKeys + trusted
        self.clock = clock
    }

    /// What a valid URL grants.
    public struct Grant: Sendable, Equatable {
        /// The container the URL is for.
        public var containerId: String
        /// Its permissions.
        public var permissions: Set<SignedURLPermission>
        /// When it expires, in seconds since the epoch.
        public var expiresAt: Int64
    }

    /// The UTF-8 text that is signed.
    public static func stringToSign(version: String, containerId: String, sp: String, st: String, se: String) -> String
    {
        "\(version)\n\(containerId)\n\(sp)\n\(st)\n\(se)"
    }

    /// Whether a query carries a signature at all (`sig` present): such requests are authorized by it.
    public static func isSigned(_ query: [String: String]) -> Bool { query["sig"] != nil }

    /// Checks the signed parameters of a request.
    ///
    /// - Parameters:
    ///   - query: The request's percent-decoded query parameters.
    ///   - containerId: The container the request addresses (the signature must be for it).
    ///   - required: The permission the operation needs.
    ///   - acceptingExpired: Takes a genuine URL past its expiry too (a run agent renewing its URLs: a job that waited
    ///     in Slurm's queue longer than they last).
    /// - Returns: What the URL grants.
    /// - Throws: `SignedURLError` `.authenticationFailed` when a parameter is missing or malformed, the URL is not yet
    ///   valid or expired, or the signature does not verify; `.permissionMismatch` when the URL is genuine but lacks
    ///   `required`.
    public func validate(
        query: [String: String],
        containerId: String,
        required: SignedURLPermission,
        acceptingExpired: Bool = false
    ) throws -> Grant {
        func field(_ name: String) throws -> String {
            guard let value = query[name], !value.isEmpty else {
                throw SignedURLError(.authenticationFailed, "The access URL is missing its '\(name)' parameter.")
            }
            return value
        }
        let sv = try field("sv")
        guard sv == SignedURLIssuer.version else {
            throw SignedURLError(.authenticationFailed, "Unsupported signed URL version '\(sv)'.")
        }
        let sp = try field("sp")
        let st = try field("st")
        let se = try field("se")
        let sig = try field("sig")
        guard let permissions = SignedURLPermission.parse(sp) else {
            throw SignedURLError(.authenticationFailed, "Invalid permissions '\(sp)'.")
        }
        guard let start = RFC3339.parseSeconds(st), let expiry = RFC3339.parseSeconds(se) else {
            throw SignedURLError(.authenticationFailed, "Invalid 'st' or 'se': expected yyyy-MM-ddTHH:mm:ssZ.")
        }
        let now = clock.seconds()
        guard now >= start else { throw SignedURLError(.authenticationFailed, "The access URL is not valid yet.") }
        guard now <= expiry || acceptingExpired else {
            throw SignedURLError(.authenticationFailed, "The access URL has expired.")
        }
        guard let der = Base64.decode(sig), let signature = try? P256.Signing.ECDSASignature(derRepresentation: der)
        else {
            throw SignedURLError(.authenticationFailed, "The signature is not a base64 DER ECDSA signature.")
        }
        let payload = Array(Self.stringToSign(version: sv, containerId: containerId, sp: sp, st: st, se: se).utf8)
        guard keys.contains(where: { $0.isValidSignature(signature, for: payload) }) else {
            throw SignedURLError(
                .authenticationFailed,
                "The signature does not match this container and these parameters."
            )
        }
        guard permissions.contains(required) else {
            throw SignedURLError(
                .permissionMismatch,
                "The access URL grants '\(sp)'; this operation needs '\(required)'."
            )
        }
        return Grant(containerId: containerId, permissions: permissions, expiresAt: expiry)
    }
}
