import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import TygerRunEngine
import TygerModel

/// Runs a handler body, turning engine errors into API errors.
func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw RunAPIError.from(error)
    }
}

/// A JSON response with upstream's conventions.
func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, location: String? = nil) throws -> Response {
    var data = try TygerJSON.makeEncoder().encode(value)
    data.append(0x0A)
    var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
    if let location { headers[.location] = location }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

/// Reads and decodes a JSON request body (strict).
func decodeBody<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
    var request = request
    let buffer = try await request.collectBody(upTo: 4 << 20)
    guard buffer.readableBytes > 0 else {
        throw RunAPIError(.badRequest, code: "InvalidInput", message: "An empty object is not a valid input value")
    }
    let data = Data(buffer.readableBytesView)
    if data.elementsEqual("null".utf8) {
        throw RunAPIError(.badRequest, code: "InvalidInput", message: "null is not a valid input value")
    }
    do {
        return try TygerJSON.makeDecoder(requireCodespecKind: true).decode(T.self, from: data)
    } catch let error as TygerRunEngineError {
        throw error
    } catch let error as DecodingError {
        throw RunAPIError(.badRequest, code: "InvalidInput", message: "Error deserializing input: " + YAMLSpecs.describe(error))
    } catch {
        throw RunAPIError(.badRequest, code: "InvalidInput", message: "Error deserializing input: \(error)")
    }
}

/// Query parameters.
struct Query {
    let request: Request

    func string(_ name: String) -> String? { request.uri.queryParameters[Substring(name)].map(String.init) }

    func all(_ name: String) -> [String] { request.uri.queryParameters.getAll(name).map { String($0) } }

    func bool(_ name: String) throws -> Bool {
        guard let v = string(name), !v.isEmpty else { return false }
        switch v.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw RunAPIError.badRequest("\(name) must be true or false")
        }
    }

    /// `limit`: default 20, capped at 2000, negative → 400.
    func limit() throws -> Int {
        guard let text = string("limit"), !text.isEmpty else { return 20 }
        guard let value = Int(text), value >= 0 else { throw RunAPIError.badRequest("Limit must be a non-negative integer.") }
        return min(value, 2000)
    }

    func date(_ name: String) throws -> Date? {
        guard let text = string(name), !text.isEmpty else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw RunAPIError.badRequest("The value '\(text)' is not valid for \(name).")
        }
        return date
    }

    /// `tag[KEY]=VALUE` pairs.
    func tags() -> [String: String] {
        var tags: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where key.hasPrefix("tag[") && key.hasSuffix("]") {
            tags[String(key.dropFirst(4).dropLast())] = String(value)
        }
        return tags
    }

    /// The request path and query with `_ct` replaced by `token` (upstream's `nextLink`).
    func nextLink(token: String) -> String {
        let pairs = (request.uri.query ?? "").split(separator: "&").filter { !$0.hasPrefix("_ct=") }
        let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
        return request.uri.path + "?" + (pairs.map(String.init) + ["_ct=\(encoded)"]).joined(separator: "&")
    }
}
