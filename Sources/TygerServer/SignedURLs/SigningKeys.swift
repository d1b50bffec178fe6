public import Crypto
import Foundation

/// The ECDSA P-256 keys that sign and check local access URLs.
///
/// The primary key signs; the primary and, when present, the secondary key are accepted when checking. To rotate:
/// move the primary key file to the secondary name and restart; a new primary is generated, and URLs signed with the
/// old key stay valid until they expire (at most the longest TTL) or the secondary file is removed.
public struct SigningKeys: Sendable {
    /// The key new URLs are signed with.
    public let primary: P256.Signing.PrivateKey
    /// An older key whose signatures are still accepted.
    public let secondary: P256.Signing.PublicKey?

    /// Keys from values (tests, or a control plane that keeps keys elsewhere).
    public init(primary: P256.Signing.PrivateKey, secondary: P256.Signing.PublicKey? = nil) {
        self.primary = primary
        self.secondary = secondary
    }

    /// The primary key's public key in PEM form (`tyger-server signing-key`, for data planes).
    public var publicKeyPEM: String { primary.publicKey.pemRepresentation }

    /// The public keys a validator accepts: primary first.
    public var verificationKeys: [P256.Signing.PublicKey] {
        [primary.publicKey] + (secondary.map { [$0] } ?? [])
    }

    /// File name of the primary key (PEM, PKCS#8 private key, mode 0600) in the keys directory.
    public static let primaryFileName = "signing-primary.pem"
    /// File name of the optional secondary key (PEM, a private or a public key).
    public static let secondaryFileName = "signing-secondary.pem"

    /// Loads the keys from `directory`, generating the primary key on first use.
    ///
    /// - Parameter directory: The keys directory (created with mode 0700 if missing).
    /// - Returns: The keys.
    /// - Throws: `TygerServerError` `.signingKey` when a key file is not a P-256 key in PEM form, `.io` when the
    ///   directory or file cannot be created or read.
    public static func loadOrCreate(directory: String) throws -> SigningKeys {
        try PrivateFile.makeDirectory(directory, mode: 0o700)
        let primaryPath = directory + "/" + primaryFileName
        if try PrivateFile.read(primaryPath) == nil {
            let key = P256.Signing.PrivateKey()
            // Losing the race to another starting process is fine: then we read its key below.
            _ = try PrivateFile.createExclusive(primaryPath, Array(key.pemRepresentation.utf8), mode: 0o600)
        }
        guard let primaryPEM = try PrivateFile.read(primaryPath) else {
            throw TygerServerError(.signingKey, "the signing key \(primaryPath) disappeared while starting")
        }
        let primary: P256.Signing.PrivateKey
        do {
            primary = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: primaryPEM, as: UTF8.self))
        } catch {
            throw TygerServerError(
                .signingKey,
                "\(primaryPath) is not an ECDSA P-256 private key in PEM form",
                cause: error
            )
        }
        let secondaryPath = directory + "/" + secondaryFileName
        let secondary = try PrivateFile.read(secondaryPath).map { try publicKey(pem: $0, path: secondaryPath) }
        return SigningKeys(primary: primary, secondary: secondary)
    }

    /// The public key of a PEM file holding a P-256 private or public key (a control plane's key file, given to the
    /// data planes that check its URLs).
    ///
    /// - Throws: `TygerServerError` `.signingKey` when the file cannot be read or holds no such key.
    public static func publicKey(file path: String) throws -> P256.Signing.PublicKey {
        guard let pem = FileManager.default.contents(atPath: path) else {
            throw TygerServerError(.signingKey, "cannot read the signing key file \(path)")
        }
        return try publicKey(pem: Array(pem), path: path)
    }

    private static func publicKey(pem: [UInt8], path: String) throws -> P256.Signing.PublicKey {
        let text = String(decoding: pem, as: UTF8.self)
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) { return key.publicKey }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: text) { return key }
        throw TygerServerError(.signingKey, "\(path) is not an ECDSA P-256 private or public key in PEM form")
    }
}
