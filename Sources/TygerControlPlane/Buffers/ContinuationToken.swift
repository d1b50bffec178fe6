import Foundation
import TygerModel

/// Opaque page tokens for `GET /buffers` (`_ct`).
///
/// Like upstream (which uses z-base-32 of the ASCII JSON `[createdAtTicks, id]`), the token is lowercase base32 of
/// the ASCII JSON `[createdAtMicros,"id"]`. Clients must treat it as opaque.
enum ContinuationToken {
    static func encode(_ cursor: BufferCursor) -> String {
        let json = "[\(cursor.createdAtMicros),\"\(cursor.id)\"]"
        return BufferID.encode(Array(json.utf8))
    }

    /// Decodes a token.
    ///
    /// - Throws: ``TygerControlPlaneError`` 400 `Invalid continuation token.` for anything that is not a token.
    static func decode(_ token: String) throws(TygerControlPlaneError) -> BufferCursor {
        let invalid = TygerControlPlaneError.invalidInput("Invalid continuation token.")
        guard token.utf8.count <= 512, let bytes = BufferIDCodec.decode(token),
            let array = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [Any], array.count == 2,
            let micros = (array[0] as? NSNumber)?.int64Value, let id = array[1] as? String
        else { throw invalid }
        return BufferCursor(createdAtMicros: micros, id: id)
    }
}

/// Decoding of unpadded lowercase base32 (the alphabet of ``BufferID/encode(_:)``).
enum BufferIDCodec {
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): v = UInt32(c - UInt8(ascii: "2")) + 26
            default: return nil
            }
            buffer = (buffer << 5) | v
            bits += 5
            if bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits - 8)))
                bits -= 8
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        return out
    }
}
