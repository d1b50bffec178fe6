public import Hummingbird
import TygerCore
import HTTPTypes
import Logging

extension APIError {
    /// How an error body is written.
    public enum Dialect: Sendable {
        /// Tyger's control-plane envelope: `{"error":{"code":"…","message":"…"}}`.
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
        let body: String
        switch dialect {
        case .json:
            fields[.contentType] = "application/json; charset=utf-8"
            var object = "{\"error\":{\"code\":\(TextEncoding.jsonQuoted(code)),\"message\":\(TextEncoding.jsonQuoted(message))"
            if let apiVersions {
                object += ",\"apiVersions\":[" + apiVersions.map(TextEncoding.jsonQuoted).joined(separator: ",") + "]"
            }
            body = object + "}}"
        case .azureXML:
            fields[.contentType] = "application/xml"
            body =
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>\(Self.xmlEscaped(code))</Code>"
                + "<Message>\(Self.xmlEscaped(message))</Message></Error>"
        }
        let buffer = ByteBuffer(string: body)
        fields[.contentLength] = String(buffer.readableBytes)
        return Response(status: status, headers: fields, body: includeBody ? .init(byteBuffer: buffer) : .init())
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
