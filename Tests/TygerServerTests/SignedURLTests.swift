import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TygerCore
import TygerModel
import TygerServer
import TygerTestSupport

struct SignedURLTests {
    static let write: Set<SignedURLPermission> = [.createBlob, .readBlob]
    static let read: Set<SignedURLPermission> = [.readBlob]

    static func queryItems(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            result[String(parts[0])] = String(parts[1]).removingPercentEncoding
        }
        return result
    }

    @Test func accessURLHasUpstreamShapeAndVerifies() throws {
        let keys = SigningKeys(primary: P256.Signing.PrivateKey())
        let clock = WallClock.fixed(seconds: 1_800_000_000)
        let issuer = SignedURLIssuer(keys: keys, clock: clock)
        let url = try issuer.accessURL(
            containerId: "abc123",
            writeable: true,
            ttl: .seconds(3600),
            endpoint: "http+unix:///tmp/d/api.sock:"
        )
        #expect(
            url.hasPrefix(
                "http+unix:///tmp/d/api.sock:/containers/abc123?api-version=1.0&sv=0.1.0&sp=cr&st=2027-01-15T08%3A00%3A00Z&se=2027-01-15T09%3A00%3A00Z&sig="
            )
        )
        let query = Self.queryItems(String(url.split(separator: "?")[1]))
        #expect(query["st"] == "2027-01-15T08:00:00Z")
        // The signature is DER ECDSA over the upstream string to sign.
        let der = try #require(Base64.decode(query["sig"]!))
        let signature = try P256.Signing.ECDSASignature(derRepresentation: der)
        let payload = "0.1.0\nabc123\ncr\n2027-01-15T08:00:00Z\n2027-01-15T09:00:00Z"
        #expect(keys.primary.publicKey.isValidSignature(signature, for: Array(payload.utf8)))
        let grant = try SignedURLValidator(keys: keys, clock: clock).validate(
            query: query,
            containerId: "abc123",
            required: .createBlob
        )
        #expect(grant.permissions == [.createBlob, .readBlob])
        let readURL = try issuer.accessURL(containerId: "abc123", writeable: false, endpoint: "http://127.0.0.1:8080/")
        #expect(readURL.hasPrefix("http://127.0.0.1:8080/containers/abc123?api-version=1.0&sv=0.1.0&sp=r&"))
    }

    @Test(arguments: [29, 24 * 3600 + 1, 0] as [Int64])
    func ttlOutsideBoundsIsRefused(seconds: Int64) throws {
        let issuer = SignedURLIssuer(keys: SigningKeys(primary: P256.Signing.PrivateKey()))
        #expect(throws: TygerServerError.self) {
            try issuer.accessURL(containerId: "abc", writeable: false, ttl: .seconds(seconds), endpoint: "http://h:1")
        }
    }

    @Test func issuerRefusesBadContainerIDsAndEndpoints() throws {
        let issuer = SignedURLIssuer(keys: SigningKeys(primary: P256.Signing.PrivateKey()))
        for id in ["ab", "../etc", "a/b", "abc-def", String(repeating: "a", count: 64)] {
            #expect(throws: TygerServerError.self) {
                try issuer.accessURL(containerId: id, writeable: false, endpoint: "http://h:1")
            }
        }
        #expect(throws: TygerServerError.self) {
            try issuer.accessURL(containerId: "abc", writeable: false, endpoint: "ftp://h")
        }
    }

    @Test func validityWindowIsEnforced() throws {
        let keys = SigningKeys(primary: P256.Signing.PrivateKey())
        let query = Self.queryItems(
            try SignedURLIssuer(keys: keys, clock: .fixed(seconds: 1000)).query(
                containerId: "abc",
                permissions: Self.read,
                ttl: .seconds(60)
            )
        )
        for (now, ok) in [(Int64(999), false), (1000, true), (1060, true), (1061, false)] {
            let validator = SignedURLValidator(keys: keys, clock: .fixed(seconds: now))
            if ok {
                _ = try validator.validate(query: query, containerId: "abc", required: .readBlob)
            } else {
                let error = #expect(throws: SignedURLError.self) {
                    try validator.validate(query: query, containerId: "abc", required: .readBlob)
                }
                #expect(error?.code == .authenticationFailed)
            }
        }
    }

    @Test func secondaryKeyIsAcceptedAndUnknownKeyIsNot() throws {
        let old = P256.Signing.PrivateKey()
        let new = P256.Signing.PrivateKey()
        let oldQuery = Self.queryItems(
            try SignedURLIssuer(keys: SigningKeys(primary: old)).query(
                containerId: "abc",
                permissions: Self.read,
                ttl: .seconds(60)
            )
        )
        _ = try SignedURLValidator(keys: SigningKeys(primary: new, secondary: old.publicKey))
            .validate(query: oldQuery, containerId: "abc", required: .readBlob)
        #expect(throws: SignedURLError.self) {
            try SignedURLValidator(keys: SigningKeys(primary: new)).validate(
                query: oldQuery,
                containerId: "abc",
                required: .readBlob
            )
        }
    }

    @Test func timestampsRoundTripAndRejectNonsense() {
        #expect(RFC3339.formatSeconds(0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.parseSeconds("2026-11-26T07:05:09Z").map(RFC3339.formatSeconds) == "2026-11-26T07:05:09Z")
        for bad in [
            "2026-02-30T00:00:00Z", "2026-11-26 07:05:09Z", "2026-11-26T07:05:09", "2026-11-26T07:05:09+00:00", "x",
        ] {
            #expect(RFC3339.parseSeconds(bad) == nil, "\(bad)")
        }
    }

    @Test func keysAreGeneratedOnceWithOwnerOnlyMode() throws {
        let directory = TemporaryDirectory()
        let keys = try SigningKeys.loadOrCreate(directory: directory.path + "/keys")
        let again = try SigningKeys.loadOrCreate(directory: directory.path + "/keys")
        #expect(keys.primary.rawRepresentation == again.primary.rawRepresentation)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.path + "/keys/signing-primary.pem")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // Rotation: the old primary becomes the secondary, a new primary is generated.
        try FileManager.default.moveItem(
            atPath: directory.path + "/keys/signing-primary.pem",
            toPath: directory.path + "/keys/signing-secondary.pem"
        )
        let rotated = try SigningKeys.loadOrCreate(directory: directory.path + "/keys")
        #expect(rotated.primary.rawRepresentation != keys.primary.rawRepresentation)
        #expect(rotated.secondary?.rawRepresentation == keys.primary.publicKey.rawRepresentation)
        try "garbage".write(toFile: directory.path + "/keys/signing-secondary.pem", atomically: true, encoding: .utf8)
        #expect(throws: TygerServerError.self) { try SigningKeys.loadOrCreate(directory: directory.path + "/keys") }
    }

    // MARK: Against the data plane

    @Test func expiredURLIsRefused() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        fixture.clock.advance(3601)
        try await fixture.withRouter { client in
            try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: "x")) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.xMsErrorCode] == "AuthenticationFailed")
                #expect(String(buffer: response.body).contains("expired"))
            }
        }
    }

    @Test func tamperedURLsAreRefused() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let query = try fixture.query("buf1", Self.read)
        let items = Self.queryItems(query)
        let sig = items["sig"]!
        // Flip one character of the base64 signature (keeping it base64), upgrade sp, extend se, drop a field.
        let flipped = String(sig.prefix(10)) + (sig.dropFirst(10).first == "A" ? "B" : "A") + String(sig.dropFirst(11))
        let variants = [
            query.replacingOccurrences(of: "sig=" + percent(sig), with: "sig=" + percent(flipped)),
            query.replacingOccurrences(of: "sp=r", with: "sp=cr"),
            query.replacingOccurrences(of: "se=" + percent(items["se"]!), with: "se=2099-01-01T00%3A00%3A00Z"),
            query.replacingOccurrences(of: "&sv=0.1.0", with: ""),
            query.replacingOccurrences(of: "sv=0.1.0", with: "sv=0.2.0"),
            query + "&sp=cr",
            query.replacingOccurrences(of: "sig=" + percent(sig), with: "sig=%21%21%21"),
        ]
        try await fixture.withRouter { client in
            for variant in variants {
                try await client.execute(
                    uri: "/containers/buf1/00/000?" + variant,
                    method: .put,
                    body: ByteBuffer(string: "x")
                ) {
                    response in
                    #expect(response.status == .forbidden, "\(variant)")
                    #expect(response.headers[.xMsErrorCode] == "AuthenticationFailed", "\(variant)")
                }
            }
        }
    }

    @Test func readURLCannotWrite() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            try await client.execute(
                uri: try fixture.blobURI("buf1", "00/000", Self.read),
                method: .put,
                body: ByteBuffer(string: "x")
            ) {
                response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.xMsErrorCode] == "AuthorizationPermissionMismatch")
            }
            // And a create-only URL cannot read.
            try await client.execute(uri: try fixture.blobURI("buf1", "00/000", [.createBlob]), method: .get) {
                response in
                #expect(response.headers[.xMsErrorCode] == "AuthorizationPermissionMismatch")
            }
        }
    }

    @Test func urlOfOneBufferDoesNotOpenAnother() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("bufa")
        try fixture.makeContainer("bufb")
        let queryA = try fixture.query("bufa", Self.write)
        try await fixture.withRouter { client in
            try await client.execute(
                uri: "/containers/bufb/00/000?" + queryA,
                method: .put,
                body: ByteBuffer(string: "x")
            ) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.xMsErrorCode] == "AuthenticationFailed")
            }
            try await client.execute(uri: "/containers/bufb/00/000?" + queryA, method: .get) { response in
                #expect(response.headers[.xMsErrorCode] == "AuthenticationFailed")
            }
            try await client.execute(
                uri: "/containers/bufa/00/000?" + queryA,
                method: .put,
                body: ByteBuffer(string: "x")
            ) {
                #expect($0.status == .created)
            }
        }
    }

    static let traversals: [(String, String)] = [
        ("/containers/../buffers/00/000", "InvalidContainerName"),
        ("/containers/ab/00/000", "InvalidContainerName"),
        ("/containers/buf%31/00/000", "InvalidContainerName"),
        ("/containers/buf1/../keys/signing-primary.pem", "InvalidBlobName"),
        ("/containers/buf1/00/../../keys/x", "InvalidBlobName"),
        ("/containers/buf1/%2E%2E/keys", "InvalidBlobName"),
        ("/containers/buf1/..%2F..%2Fkeys%2Fsigning-primary.pem", "InvalidBlobName"),
        ("/containers/buf1/a%2Fb", "InvalidBlobName"),
        ("/containers/buf1/a%2fb", "InvalidBlobName"),
        ("/containers/buf1/a%00b", "InvalidBlobName"),
        ("/containers/buf1/a//b", "InvalidBlobName"),
        ("/containers/buf1//etc/passwd", "InvalidBlobName"),
        ("/containers/buf1/%2Fetc%2Fpasswd", "InvalidBlobName"),
        ("/containers/buf1/./a", "InvalidBlobName"),
        ("/containers/buf1/a b", "InvalidBlobName"),
        // Longer than a file name may be (255 bytes a segment; 1024 in all, as Azure): a 400, never a 500.
        ("/containers/buf1/" + String(repeating: "a", count: 256), "InvalidBlobName"),
        (
            "/containers/buf1/" + Array(repeating: String(repeating: "b", count: 200), count: 6).joined(separator: "/"),
            "InvalidBlobName"
        ),
    ]

    @Test(arguments: traversals)
    func traversalInNamesIsRefused(path: String, code: String) async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let query = try fixture.query("buf1", Self.write)
        try await fixture.withRouter { client in
            for method in [HTTPRequest.Method.put, .get] {
                try await client.execute(
                    uri: path + "?" + query,
                    method: method,
                    body: method == .put ? ByteBuffer(string: "x") : nil
                ) {
                    response in
                    #expect(response.status == .badRequest, "\(method) \(path)")
                    #expect(response.headers[.xMsErrorCode] == code, "\(method) \(path)")
                }
            }
        }
        // Nothing was written outside the buffer.
        let top = try FileManager.default.contentsOfDirectory(atPath: fixture.app.layout.root).sorted()
        #expect(top == ["buffers", "keys"])
    }

    @Test func apiVersionIsRequired() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let query = try fixture.query("buf1", Self.write)
        try await fixture.withRouter { client in
            try await client.execute(
                uri: "/containers/buf1/00/000?" + query.replacingOccurrences(of: "api-version=1.0&", with: ""),
                method: .put,
                body: ByteBuffer(string: "x")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "ApiVersionUnspecified")
            }
            // Azure SDKs drop api-version from the SAS query but always send x-ms-version: that implies 1.0.
            try await client.execute(
                uri: "/containers/buf1/00/000?" + query.replacingOccurrences(of: "api-version=1.0&", with: ""),
                method: .put,
                headers: [HTTPField.Name("x-ms-version")!: "2026-10-06"],
                body: ByteBuffer(string: "x")
            ) { #expect($0.status == .created) }
            try await client.execute(
                uri: "/containers/buf1/00/000?"
                    + query.replacingOccurrences(of: "api-version=1.0", with: "api-version=2.0"),
                method: .get
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "UnsupportedApiVersion")
            }
        }
    }
}

private func percent(_ text: String) -> String {
    text.addingPercentEncoding(
        withAllowedCharacters: CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        )
    )!
}
