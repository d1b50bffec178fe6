import Testing
import TygerClient

@testable import TygerServer

/// What the S3 access route presigns for a client (`S3AccessController.check`): only this buffer's objects, reads
/// with a read URL, write-once writes of blobs (never of markers) with a write URL, and only the headers the store's checks need.
@Suite struct S3PresignRulesTests {
    let prefix = "team/abc/"
    let read: Set<SignedURLPermission> = [.readBlob]
    let write: Set<SignedURLPermission> = [.createBlob, .readBlob]

    func item(_ method: String, _ name: String, _ headers: [String: String] = [:]) -> S3PresignRequest.Item {
        S3PresignRequest.Item(method: method, key: name.isEmpty ? "" : prefix + name, headers: headers)
    }

    @Test func readsOfBlobsMarkersAndTheBucketNeedOnlyARead() throws {
        for name in ["00/000", "02/01/FFF", ".bufferstart", ":buffer", ":writer", ":released"] {
            #expect(try S3AccessController.check(item("GET", name), prefix: prefix, permissions: read).isEmpty)
            #expect(try S3AccessController.check(item("HEAD", name), prefix: prefix, permissions: read).isEmpty)
        }
        #expect(try S3AccessController.check(item("HEAD", ""), prefix: prefix, permissions: read).isEmpty)
    }

    @Test func writeOnceWritesAreSignedWithTheirChecksumHeaders() throws {
        let headers = [
            "If-None-Match": "*", "Content-Type": "application/octet-stream", "x-amz-checksum-crc32c": "AAAAAA==",
            "x-amz-meta-crc32c": "00000000", "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        ]
        let signed = try S3AccessController.check(item("PUT", "00/001", headers), prefix: prefix, permissions: write)
        #expect(signed.map(\.0) == signed.map(\.0).sorted())
        #expect(Set(signed.map(\.0)) == Set(headers.keys.map { $0.lowercased() }))
    }

    @Test func aReadURLCannotWrite() {
        for request in [
            item("PUT", "00/000", ["If-None-Match": "*"]), item("PUT", ".bufferend", ["If-None-Match": "*"]),
        ] {
            let error = #expect(throws: APIError.self) {
                try S3AccessController.check(request, prefix: prefix, permissions: read)
            }
            #expect(error?.code == "AuthorizationPermissionMismatch")
        }
    }

    static let refused: [(String, String, [String: String], String)] = [
        ("PUT", "00/000", [:], "If-None-Match: * is required"),
        ("PUT", "00/000", ["If-None-Match": "\"etag\""], "If-None-Match: * is required"),
        ("PUT", ":buffer", ["If-None-Match": "*"], "created by the control plane"),
        ("PUT", ":writer", ["If-None-Match": "*"], "the writer's lease is kept by the server"),
        ("PUT", ":released", ["If-None-Match": "*"], "the writer's lease is kept by the server"),
        ("DELETE", ":writer", [:], "method is not allowed"),
        ("DELETE", "00/000", [:], "method is not allowed"),
        ("POST", "00/000", [:], "method is not allowed"),
        ("GET", "", [:], "only HEAD is allowed on the bucket"),
        ("GET", "00/000", ["Range": "bytes=0-1"], "header 'range' cannot be presigned"),
        ("PUT", "00/000", ["If-None-Match": "*", "x-amz-copy-source": "other/key"], "header 'x-amz-copy-source'"),
        ("PUT", "00/000", ["If-None-Match": "*", "if-none-match": "*"], "a header is repeated"),
        ("GET", "../x", [:], "not a blob name"),
        ("GET", ":other", [:], "not a blob name"),
    ]

    @Test(arguments: refused)
    func whatIsNeverPresigned(method: String, name: String, headers: [String: String], reason: String) {
        let error = #expect(throws: APIError.self) {
            try S3AccessController.check(item(method, name, headers), prefix: prefix, permissions: write)
        }
        #expect(error?.code == "InvalidInput")
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func keysOfOtherBuffersAreRefused() {
        for key in ["team/abd/00/000", "team/ab/00/000", "other/abc/00/000", "team/abc"] {
            let error = #expect(throws: APIError.self) {
                try S3AccessController.check(
                    S3PresignRequest.Item(method: "GET", key: key),
                    prefix: prefix,
                    permissions: write
                )
            }
            #expect(error?.message.contains("not one of this buffer's") == true)
        }
    }
}
