import Foundation
import Testing
import TygerClient

/// Signature Version 4 against the examples of Amazon's S3 documentation ("Signature Calculations for the
/// Authorization Header" and "Query String Authentication"): the same inputs must give the published signatures.
@Suite struct S3SignerTests {
    let signer = S3Signer(
        credentials: S3Credentials(
            accessKeyId: "AKIAIOSFODNN7EXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ),
        region: "us-east-1"
    )
    /// 2013-05-24T00:00:00Z, the examples' time.
    let date = Date(timeIntervalSince1970: 1_369_353_600)
    let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test func aGetWithARangeIsSignedAsTheDocumentationShows() {
        let request = S3Signer.Request(
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            headers: [("Range", "bytes=0-9")]
        )
        let headers = signer.headers(for: request, payloadHash: emptyHash, date: date)
        let authorization = headers.first { $0.0 == "Authorization" }?.1
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        #expect(headers.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    @Test func aPresignedGetIsSignedAsTheDocumentationShows() {
        let request = S3Signer.Request(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt")
        let query = signer.presignedQuery(for: request, expires: 86400, date: date)
        #expect(
            query
                == "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        )
    }

    @Test func sessionTokensAreSignedToo() {
        var withToken = signer.credentials
        withToken.sessionToken = "token/with+chars"
        let tokenSigner = S3Signer(credentials: withToken, region: "us-east-1")
        let request = S3Signer.Request(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt")
        let headers = tokenSigner.headers(for: request, date: date)
        #expect(headers.contains { $0 == ("x-amz-security-token", "token/with+chars") })
        let authorization = headers.first { $0.0 == "Authorization" }?.1 ?? ""
        #expect(authorization.contains("x-amz-security-token"))
        #expect(authorization != signer.headers(for: request, date: date).first { $0.0 == "Authorization" }?.1)
        let query = tokenSigner.presignedQuery(for: request, expires: 60, date: date)
        #expect(query.contains("X-Amz-Security-Token=token%2Fwith%2Bchars"))
    }

    @Test func keysArePercentEncodedExceptUnreservedCharactersAndSlashes() {
        #expect(S3Signer.encode("00/0a-b_c.d~ e+f=ü", keepingSlashes: true) == "00/0a-b_c.d~%20e%2Bf%3D%C3%BC")
        #expect(S3Signer.encode("a/b", keepingSlashes: false) == "a%2Fb")
        #expect(S3Signer.canonicalQuery([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2")
    }

    @Test func credentialsComeFromTheUsualVariables() {
        #expect(S3Credentials.fromEnvironment([:]) == nil)
        #expect(S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a"]) == nil)
        #expect(
            S3Credentials.fromEnvironment([
                "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "",
            ])
                == S3Credentials(accessKeyId: "a", secretAccessKey: "b")
        )
        #expect(
            S3Credentials.fromEnvironment([
                "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "t",
            ])?
            .sessionToken == "t"
        )
    }

    @Test(arguments: [
        (
            "s3://tyger-buffers?endpoint=http://127.0.0.1:8333", "http://127.0.0.1:8333", "tyger-buffers", "",
            "us-east-1"
        ),
        (
            "s3://b12/team/a/?endpoint=https://s3.example:9000&region=eu-west-1", "https://s3.example:9000", "b12",
            "team/a/",
            "eu-west-1"
        ),
        ("s3://bucket?region=eu-north-1", "https://s3.eu-north-1.amazonaws.com", "bucket", "", "eu-north-1"),
    ])
    func locationsParse(text: String, endpoint: String, bucket: String, prefix: String, region: String) throws {
        let location = try S3Location(parsing: text)
        #expect(location.endpoint == endpoint)
        #expect(location.bucket == bucket)
        #expect(location.prefix == prefix)
        #expect(location.region == region)
    }

    @Test(arguments: [
        "http://bucket", "s3://", "s3://B", "s3://ab", "s3://bucket?endpoint=ftp://x",
        "s3://bucket?endpoint=http://h/p",
        "s3://bucket?colour=red", "s3://bucket/../x?endpoint=http://h", "s3://bucket?region=",
    ])
    func badLocationsAreRefused(text: String) {
        #expect(throws: (any Error).self) { try S3Location(parsing: text) }
    }
}
