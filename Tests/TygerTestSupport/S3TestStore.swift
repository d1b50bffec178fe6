import Foundation

/// The S3-compatible store of the tests (SeaweedFS, started by `tools/s3-store` from `tools/test`), from
/// `TYGER_TEST_S3_ENDPOINT`, `TYGER_TEST_S3_ACCESS_KEY` and `TYGER_TEST_S3_SECRET_KEY`; `nil` where they are not set,
/// and the tests that need it are skipped.
public struct S3TestStore: Sendable {
    public let endpoint: String
    public let accessKey: String
    public let secretKey: String

    public static let settings: S3TestStore? = {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["TYGER_TEST_S3_ENDPOINT"], !endpoint.isEmpty,
            let accessKey = environment["TYGER_TEST_S3_ACCESS_KEY"], !accessKey.isEmpty,
            let secretKey = environment["TYGER_TEST_S3_SECRET_KEY"], !secretKey.isEmpty
        else { return nil }
        return S3TestStore(endpoint: endpoint, accessKey: accessKey, secretKey: secretKey)
    }()

    /// A name no other test uses (for buckets and buffers).
    public static func uniqueName(_ prefix: String) -> String {
        prefix + "-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
    }
}
