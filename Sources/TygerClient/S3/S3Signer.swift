import Crypto
public import Foundation

/// The credentials of an S3 account: an access key, its secret, and the session token of temporary credentials.
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as every AWS tool
    /// reads them; `nil` unless both keys are set.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> S3Credentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: token)
    }
}

/// AWS Signature Version 4 for S3 requests: in the `Authorization` header, or in the query of a presigned URL.
///
/// Payloads are not hashed (`UNSIGNED-PAYLOAD`, which S3 accepts for both forms): the bytes of a blob are checked
/// by the `Content-MD5` S3 verifies on upload and by the blob's own CRC32C or MD5 on download, so hashing every
/// payload with SHA-256 as well would only cost CPU.
public struct S3Signer: Sendable {
    public let credentials: S3Credentials
    public let region: String
    public let service: String

    /// The payload hash of a request whose body is not signed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign: the path is not yet percent-encoded (`/bucket/key with spaces`), nor the query.
    public struct Request: Sendable {
        public var method: String
        /// `host` or `host:port`, as the `Host` header carries it.
        public var host: String
        public var path: String
        public var query: [(String, String)]
        /// Headers to sign besides `host` (names in any case).
        public var headers: [(String, String)]

        public init(
            method: String,
            host: String,
            path: String,
            query: [(String, String)] = [],
            headers: [(String, String)] = []
        ) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// The headers that sign `request` (`x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` with session
    /// credentials, and `Authorization`), to send besides its own.
    ///
    /// - Parameters:
    ///   - payloadHash: The hex SHA-256 of the body, or ``unsignedPayload``.
    ///   - date: The signing time (requests are refused 15 minutes away from the server's clock).
    public func headers(
        for request: Request,
        payloadHash: String = S3Signer.unsignedPayload,
        date: Date = Date()
    ) -> [(String, String)] {
        let stamp = Self.timestamp(date)
        var added = [("x-amz-date", stamp), ("x-amz-content-sha256", payloadHash)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        var signed = request
        signed.headers += added
        let (canonical, signedHeaders) = Self.canonicalRequest(signed, payloadHash: payloadHash)
        let scope = self.scope(stamp)
        let signature = self.signature(canonical, stamp: stamp, scope: scope)
        added.append(
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), "
                    + "Signature=\(signature)"
            )
        )
        return added
    }

    /// The query of a presigned URL for `request`: its own query, then the `X-Amz-*` parameters and the signature,
    /// percent-encoded, without the leading `?`. Only `host` and the request's headers are signed: a client using
    /// the URL must send those headers with exactly these values.
    ///
    /// - Parameter expires: Seconds the URL stays valid, 1 to 604,800 (a week, S3's limit).
    public func presignedQuery(for request: Request, expires: Int, date: Date = Date()) -> String {
        precondition((1...604_800).contains(expires), "presigned URLs last from 1 s to a week")
        let stamp = Self.timestamp(date)
        var signed = request
        let names = Set(request.headers.map { $0.0.lowercased() } + ["host"]).sorted()
        signed.query += [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(credentials.accessKeyId)/\(scope(stamp))"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", names.joined(separator: ";")),
        ]
        if let token = credentials.sessionToken { signed.query.append(("X-Amz-Security-Token", token)) }
        let (canonical, _) = Self.canonicalRequest(signed, payloadHash: Self.unsignedPayload)
        let signature = self.signature(canonical, stamp: stamp, scope: scope(stamp))
        return Self.canonicalQuery(signed.query) + "&X-Amz-Signature=" + signature
    }

    // MARK: The algorithm

    private func scope(_ stamp: String) -> String {
        "\(stamp.prefix(8))/\(region)/\(service)/aws4_request"
    }

    private func signature(_ canonicalRequest: String, stamp: String, scope: String) -> String {
        let stringToSign = [
            "AWS4-HMAC-SHA256", stamp, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        var key = SymmetricKey(data: Data(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [String(stamp.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    /// The canonical request and its signed header names (`host;x-amz-date`).
    static func canonicalRequest(_ request: Request, payloadHash: String) -> (String, String) {
        var headers: [String: String] = ["host": request.host]
        for (name, value) in request.headers {
            let trimmed = value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            headers[name.lowercased()] = trimmed
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!)\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let text = [
            request.method,
            encode(request.path, keepingSlashes: true),
            canonicalQuery(request.query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// The query sorted by encoded name, then value, each percent-encoded (`/` included).
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (encode($0.0, keepingSlashes: false), encode($0.1, keepingSlashes: false)) }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Percent-encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`), and `/` when `keepingSlashes`.
    public static func encode(_ text: String, keepingSlashes: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        let digits = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "/") where keepingSlashes:
                out.append("/")
            default:
                out.append("%")
                out.unicodeScalars.append(UnicodeScalar(digits[Int(byte >> 4)]))
                out.unicodeScalars.append(UnicodeScalar(digits[Int(byte & 0xF)]))
            }
        }
        return out
    }

    /// `20130524T000000Z`.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { n.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        return "\(c.year ?? 1970)\(two(c.month))\(two(c.day))T\(two(c.hour))\(two(c.minute))\(two(c.second))Z"
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
