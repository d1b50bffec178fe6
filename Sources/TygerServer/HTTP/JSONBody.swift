import Foundation
import HTTPTypes
import Hummingbird
import TygerModel

/// JSON request and response bodies of the control-plane routes: always Codable, through ``TygerModel/TygerJSON``.
enum JSONBody {
    /// The largest JSON request body (the data plane streams and ignores this).
    static let maxRequestBytes = 4 << 20

    /// A JSON response.
    ///
    /// - Parameters:
    ///   - status: The status.
    ///   - value: The body.
    ///   - headers: Extra headers (`Location`, `ETag`).
    ///   - lineTerminated: Whether the body ends with a newline (the runs routes, like their NDJSON watch stream).
    /// - Returns: The response, `Content-Type: application/json; charset=utf-8`.
    /// - Throws: `EncodingError` only for values JSON cannot represent (never for TygerModel's types).
    static func response(
        _ status: HTTPResponse.Status = .ok,
        _ value: some Encodable,
        headers: HTTPFields = [:],
        lineTerminated: Bool = false
    ) throws -> Response {
        var data = try TygerJSON.encode(value)
        if lineTerminated { data.append(0x0A) }
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads and decodes a JSON request body with upstream's rules and messages (``TygerJSON/decodeBody``).
    ///
    /// - Parameters:
    ///   - type: The body type.
    ///   - request: The request.
    ///   - allowEmpty: Whether an empty body or `{}` is acceptable (update bodies).
    ///   - allowEmptyObject: Whether `{}` (but not an empty body) is acceptable.
    /// - Returns: The value.
    /// - Throws: `TygerModelError` (400 `InvalidInput`); Hummingbird's 413 for bodies over ``maxRequestBytes``.
    static func decode<T: Decodable>(
        _ type: T.Type,
        from request: Request,
        allowEmpty: Bool = false,
        allowEmptyObject: Bool = false
    ) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: maxRequestBytes)
        return try TygerJSON.decodeBody(
            type,
            from: Data(buffer.readableBytesView),
            allowEmpty: allowEmpty,
            allowEmptyObject: allowEmptyObject,
            requireCodespecKind: true
        )
    }
}
