/// Checks container image references (`ubuntu`, `ghcr.io/org/recon:1.2`, `busybox@sha256:…`) before they reach an
/// engine, so a malformed one is refused at run creation with a message that says what is wrong.
///
/// The grammar is the distribution reference's: `[HOST[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]`, path components of
/// lowercase letters and digits joined by `.`, `_`, `__` or dashes; tags of at most 128 word characters, dots and
/// dashes, not starting with either.
public enum ImageReference {
    /// Returns why `reference` is not a valid image reference, or `nil` when it is.
    public static func problem(_ reference: String) -> String? {
        if reference.isEmpty { return "the image is empty" }
        if reference.utf8.count > 255 { return "the image reference is longer than 255 characters" }
        var rest = Substring(reference)
        if let at = rest.firstIndex(of: "@") {
            let digest = rest[rest.index(after: at)...]
            rest = rest[..<at]
            let parts = digest.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].count >= 32,
                parts[0].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "+.-_".contains($0)) }),
                parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else { return "the digest '\(digest)' is not ALGORITHM:HEX (e.g. sha256:…)" }
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard let last = components.last else { return "the image name is empty" }
        if let colon = last.lastIndex(of: ":") {
            let tag = last[last.index(after: colon)...]
            guard !tag.isEmpty, tag.count <= 128, let first = tag.first, first != ".", first != "-",
                tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
            else { return "the tag '\(tag)' is not valid (letters, digits, '_', '.', '-'; at most 128)" }
            components[components.count - 1] = last[..<colon]
        }
        if components.count > 1, isHost(components[0]) { components.removeFirst() }
        for component in components {
            guard isPathComponent(component) else {
                return "'\(component)' is not a valid image name component (lowercase letters and digits, "
                    + "separated by '.', '_', '__' or '-')"
            }
        }
        return nil
    }

    /// A registry host: has a `.` or a `:` (a port), or is `localhost`.
    private static func isHost(_ text: Substring) -> Bool {
        guard text.contains(".") || text.contains(":") || text == "localhost" else { return false }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, !parts[0].isEmpty,
            parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-".contains($0)) })
        else { return false }
        if parts.count == 2 { return !parts[1].isEmpty && parts[1].allSatisfy(\.isNumber) }
        return true
    }

    private static func isPathComponent(_ text: Substring) -> Bool {
        guard let first = text.first, let last = text.last, isAlnum(first), isAlnum(last) else { return false }
        var separatorRun = ""
        for c in text {
            if isAlnum(c) {
                if !separatorRun.isEmpty, ![".", "_", "__"].contains(separatorRun),
                    !separatorRun.allSatisfy({ $0 == "-" })
                {
                    return false
                }
                separatorRun = ""
            } else if "._-".contains(c) {
                separatorRun.append(c)
            } else {
                return false
            }
        }
        return true
    }

    private static func isAlnum(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }
}
