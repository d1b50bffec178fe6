import Foundation
import HTTPTypes
public import Hummingbird
import TygerModel

extension APIError {
    /// How an error body is written.
    public enum Dialect: Sendable {
        /// Tyger's control-plane envelope, ``TygerModel/ErrorResponse``: `{"error":{"code":"…","message":"…"}}`;
        /// a 500 has an empty body, as upstream.
        case json
        /// Azure Blob Storage: `x-ms-error-code` header and `<Error><Code>…</Code><Message>…</Message></Error>`.
        case azureXML
    }

    /// The dialect for a request path: Azure XML under `/containers`, JSON elsewhere.
    public static func dialect(forPath path: String) -> Dialect {
        path == "/containers" || path.hasPrefix("/containers/") ? .azureXML : .json
    }

    /// Renders the error as a response.
    ///
    /// - Parameters:
    ///   - dialect: JSON envelope or Azure XML.
    ///   - includeBody: `false` for HEAD requests, which must not carry a body.
    /// - Returns: The response, with `x-ms-error-code` in both dialects (clients of either plane may read it).
    public func response(dialect: Dialect, includeBody: Bool = true) -> Response {
        var fields = headers
        fields[HTTPField.Name.xMsErrorCode] = code
        let body: ByteBuffer
        switch dialect {
        case .json:
            // Upstream answers unhandled failures with an empty 500; internals never reach the client.
            guard status != .internalServerError, hasBody else {
                fields[.contentLength] = "0"
                return Response(status: status, headers: fields)
            }
            fields[.contentType] = "application/json; charset=utf-8"
            let envelope = ErrorResponse(error: ErrorInfo(code: code, message: message, apiVersions: apiVersions))
            // Two strings and an optional string array always encode.
            body = ByteBuffer(bytes: (try? TygerJSON.makeEncoder().encode(envelope)) ?? Data())
        case .azureXML:
            fields[.contentType] = "application/xml"
            body = ByteBuffer(
                string: "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>\(Self.xmlEscaped(code))</Code>"
                    + "<Message>\(Self.xmlEscaped(message))</Message></Error>"
            )
        }
        fields[.contentLength] = String(body.readableBytes)
        return Response(status: status, headers: fields, body: includeBody ? .init(byteBuffer: body) : .init())
    }

    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension HTTPField.Name {
    /// `x-ms-error-code`, the Azure error code header.
    static let xMsErrorCode = HTTPField.Name("x-ms-error-code")!  // a valid token, checked by the literal
    /// `Request-Id`, set on every response.
    static let requestID = HTTPField.Name("Request-Id")!  // a valid token
}
