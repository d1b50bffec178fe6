import HTTPTypes

/// The body of a Put Block List request:
///
/// ```xml
/// <?xml version="1.0" encoding="utf-8"?>
/// <BlockList><Latest>AAAA</Latest><Uncommitted>AAAB</Uncommitted><Committed>AAAC</Committed></BlockList>
/// ```
///
/// A strict reader of just that grammar (an optional BOM and XML declaration, whitespace between elements, no
/// comments, entities or attributes on the entries): what the Azure SDKs send. Anything else is refused with 400
/// `InvalidXmlDocument`, never guessed at.
struct BlockList: Equatable {
    /// Where Azure looks a block ID up: among the blob's committed blocks, its uncommitted (staged) ones, or both
    /// (`Latest`: the staged one first).
    enum Source: Equatable {
        case committed
        case uncommitted
        case latest
    }

    struct Entry: Equatable {
        var source: Source
        /// The block ID as sent: base64.
        var id: String
    }

    var entries: [Entry]

    /// Parses a body.
    ///
    /// - Parameters:
    ///   - bytes: The request body.
    ///   - maxEntries: The most blocks a list may name.
    /// - Throws: `APIError` 400 `InvalidXmlDocument` for anything but the grammar above, 400 `BlockListTooLong` past
    ///   `maxEntries` blocks.
    static func parse(_ bytes: [UInt8], maxEntries: Int) throws(APIError) -> BlockList {
        var reader = Reader(bytes: bytes)
        if reader.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { reader.position = 3 }
        reader.skipWhitespace()
        if reader.consume("<?xml") {
            guard let end = reader.find("?>") else { throw invalidXML("the XML declaration is not closed") }
            reader.position = end + 2
            reader.skipWhitespace()
        }
        guard reader.consume("<BlockList") else { throw invalidXML("the root element must be BlockList") }
        reader.skipWhitespace()
        var entries: [Entry] = []
        if !reader.consume("/>") {
            guard reader.consume(">") else { throw invalidXML("BlockList may not have attributes") }
            while true {
                reader.skipWhitespace()
                if reader.consume("</BlockList>") { break }
                let source: Source
                let tag: String
                if reader.consume("<Latest>") {
                    (source, tag) = (.latest, "Latest")
                } else if reader.consume("<Uncommitted>") {
                    (source, tag) = (.uncommitted, "Uncommitted")
                } else if reader.consume("<Committed>") {
                    (source, tag) = (.committed, "Committed")
                } else {
                    throw invalidXML("expected Latest, Uncommitted or Committed elements in BlockList")
                }
                let start = reader.position
                while reader.position < reader.bytes.count, reader.bytes[reader.position] != UInt8(ascii: "<") {
                    reader.position += 1
                }
                let text = String(decoding: reader.bytes[start..<reader.position], as: UTF8.self)
                guard reader.consume("</\(tag)>") else { throw invalidXML("the \(tag) element is not closed") }
                guard entries.count < maxEntries else {
                    throw APIError(
                        .badRequest,
                        code: "BlockListTooLong",
                        message: "The block list may not contain more than \(maxEntries) blocks."
                    )
                }
                entries.append(Entry(source: source, id: text.trimmingWhitespace()))
            }
        }
        reader.skipWhitespace()
        guard reader.position == reader.bytes.count else { throw invalidXML("content after BlockList") }
        return BlockList(entries: entries)
    }

    static func invalidXML(_ detail: String) -> APIError {
        APIError(
            .badRequest,
            code: "InvalidXmlDocument",
            message: "XML specified is not syntactically valid: \(detail)."
        )
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func consume(_ literal: String) -> Bool {
            let utf8 = Array(literal.utf8)
            guard bytes.count - position >= utf8.count, bytes[position..<(position + utf8.count)].elementsEqual(utf8)
            else { return false }
            position += utf8.count
            return true
        }

        func find(_ literal: String) -> Int? {
            let utf8 = Array(literal.utf8)
            var i = position
            while i + utf8.count <= bytes.count {
                if bytes[i..<(i + utf8.count)].elementsEqual(utf8) { return i }
                i += 1
            }
            return nil
        }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
