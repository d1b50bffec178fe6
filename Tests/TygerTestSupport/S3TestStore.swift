import Foundation

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

    /// A name no other test uses (for buckets and buffers).
    public static func uniqueName(_ prefix: String) -> String {
        prefix + "-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
    }
}
