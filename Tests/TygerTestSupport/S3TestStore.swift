import Foundation
import TygerClient

/// The S3-compatible stores of the tests (started by `tools/s3-store` from `tools/test`), from
/// `TYGER_TEST_S3_ENDPOINT` (SeaweedFS), `TYGER_TEST_S3_SECOND_ENDPOINT` (rclone's `serve s3`, which ignores
/// `If-None-Match`), `TYGER_TEST_S3_ACCESS_KEY` and `TYGER_TEST_S3_SECRET_KEY` (one account on both); `nil` where
/// they are not set, and the tests that need them are skipped.
public struct S3TestStore: Sendable {
    public let endpoint: String
    public let secondEndpoint: String?
    public let accessKey: String
    public let secretKey: String

    public static let settings: S3TestStore? = {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["TYGER_TEST_S3_ENDPOINT"], !endpoint.isEmpty,
            let accessKey = environment["TYGER_TEST_S3_ACCESS_KEY"], !accessKey.isEmpty,
            let secretKey = environment["TYGER_TEST_S3_SECRET_KEY"], !secretKey.isEmpty
        else { return nil }
        let second = environment["TYGER_TEST_S3_SECOND_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        return S3TestStore(endpoint: endpoint, secondEndpoint: second, accessKey: accessKey, secretKey: secretKey)
    }()

    /// A new bucket on the first store (SeaweedFS), or on the second (rclone) when `second` is set.
    public func makeBucket(_ prefix: String, second: Bool = false) async throws -> (bucket: String, endpoint: String) {
        let bucket = Self.uniqueName(prefix)
        let endpoint = second ? (secondEndpoint ?? endpoint) : endpoint
        try await HTTPTransport.withTransport { transport in
            let client = S3Client(
                location: S3Location(endpoint: endpoint, bucket: bucket),
                credentials: S3Credentials(accessKeyId: accessKey, secretAccessKey: secretKey),
                transport: transport
            )
            try await client.createBucket()
        }
        return (bucket, endpoint)
    }

    /// The credentials of both stores, as the `AWS_*` variables.
    public var credentialsEnvironment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey]
    }

    /// A name no other test uses (for buckets and buffers).
    public static func uniqueName(_ prefix: String) -> String {
        prefix + "-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
    }
}
