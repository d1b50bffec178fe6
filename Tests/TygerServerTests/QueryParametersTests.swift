import Foundation
import Testing
import TygerServer

/// The one query decoder of every route.
struct QueryParametersTests {
    @Test func keysAndValuesArePercentDecoded() {
        let query = QueryParameters("api-version=1.0&tag%5Bk%5D=v%20w&excludeTag[x]=a+b&tag%5Bk%5D=last&flag")
        #expect(query.tags("tag") == ["k": "last"])
        #expect(query.tags("excludeTag") == ["x": "a b"])
        #expect(query.string("flag") == "")
        #expect(query.string("missing") == nil)
        #expect(query.all("tag[k]") == ["v w", "last"])
    }

    @Test func typedGetters() throws {
        let query = QueryParameters("a=TRUE&b=%20false&c=&d=maybe&limit=5000&n=-3&since=2026-01-02T03:04:05.123456Z")
        #expect(try query.bool("a") == true)
        #expect(try query.bool("b") == false)
        #expect(try query.bool("c") == nil)
        #expect(throws: APIError.invalidInput("d must be true or false")) { try query.bool("d") }
        #expect(try query.limit() == QueryParameters.maxLimit)
        #expect(try QueryParameters(nil).limit() == QueryParameters.defaultLimit)
        #expect(throws: APIError.invalidInput("Limit must be a non-negative integer.")) {
            try QueryParameters("limit=-1").limit()
        }
        #expect(try query.int("n") == -3)
        let since = try #require(try query.date("since"))
        #expect(abs(since.timeIntervalSince1970 - 1_767_323_045.123456) < 1e-6)
        #expect(throws: APIError.self) { try QueryParameters("since=yesterday").date("since") }
    }

    @Test func nextLinkKeepsTheQueryAsSentAndReplacesTheToken() {
        let query = QueryParameters("api-version=1.0&tag%5Bk%5D=v&_ct=old&limit=2")
        #expect(query.nextLink(path: "/runs", token: "a+b") == "/runs?api-version=1.0&tag%5Bk%5D=v&limit=2&_ct=a%2Bb")
    }
}
