#if canImport(Glibc)
import Glibc
#endif
import TygerStorage

/// Resolves a `buffer read/write` argument to a blob store, as upstream does:
/// 1. an absolute URL is used directly (`file://PATH` for the embedded local store);
/// 2. otherwise, a file smaller than 2 KiB holding such a URL;
/// 3. otherwise a buffer ID, which needs a server.
enum BufferLocation {
    static func resolve(_ argument: String) throws -> any BlobStore {
        if let store = try fromURL(argument) { return store }
        if let contents = readSmallFile(argument) {
            let url = contents.trimmingCharacters(in: " \r\n\t")
            guard let store = try fromURL(url) else {
                throw UsageError("the file '\(argument)' does not hold an access URL")
            }
            return store
        }
        if argument.isEmpty { throw UsageError("a buffer ID, access URL or file holding an access URL is required") }
        throw UsageError(
            "'\(argument)' is not an access URL (file://PATH) or a file holding one; buffer IDs need a Tyger server: run 'tyger login' to connect to one"
        )
    }

    /// Parses an absolute URL; nil when `text` is not one.
    static func fromURL(_ text: String) throws -> (any BlobStore)? {
        // RFC 3986 scheme: a letter, then letters, digits, "+", "-" or "." (so `s3://` is a URL too).
        guard let colon = text.firstIndex(of: ":"), text.first?.isLetter == true,
            text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }),
            text[..<colon].count >= 2, text[colon...].hasPrefix("://")
        else { return nil }
        let scheme = text[..<colon].lowercased()
        var rest = String(text[text.index(colon, offsetBy: 3)...])
        guard scheme == "file" else {
            throw UsageError("unsupported access URL scheme '\(scheme)': this build reads and writes file:// buffers")
        }
        if let q = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = String(rest[..<q]) }
        if rest.hasPrefix("localhost/") { rest.removeFirst("localhost".count) }
        guard let path = percentDecode(rest), !path.isEmpty else {
            throw UsageError("invalid file URL '\(text)': expected file:///absolute/path or file://relative/path")
        }
        return FileBlobStore(directory: path)
    }

    private static func percentDecode(_ s: String) -> String? {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let c = bytes.first {
            bytes = bytes.dropFirst()
            if c == UInt8(ascii: "%") {
                guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else {
                    return nil
                }
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func readSmallFile(_ path: String) -> String? {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 2048 else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let n = read(fd, &buffer, 2048)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        // By scalar: "\r\n" is one Character, so `set.contains(Character("\n"))` is false for " \r\n\t".
        func inSet(_ c: Character) -> Bool { c.unicodeScalars.allSatisfy { set.unicodeScalars.contains($0) } }
        while let f = s.first, inSet(f) { s = s.dropFirst() }
        while let l = s.last, inSet(l) { s = s.dropLast() }
        return String(s)
    }
}
