import TygerTestSupport

/// Valid documents the fuzzers start from (each mutation keeps most of the structure, so inputs reach the deep
/// decoding and validation paths, not only the JSON tokenizer).
enum FuzzTemplates {
    static let codespec: FuzzValue = .object([
        ("kind", .string("job")),
        ("image", .string("ubuntu")),
        ("command", .array([.string("sh"), .string("-c"), .string("cat")])),
        ("args", .array([.string("x")])),
        ("workingDir", .string("/tmp")),
        ("env", .object([("A", .string("b")), ("EMPTY", .null)])),
        ("buffers", .object([("inputs", .array([.string("input")])), ("outputs", .array([.string("output")]))])),
        (
            "resources",
            .object([
                ("requests", .object([("cpu", .string("500m")), ("memory", .string("1Gi"))])),
                ("limits", .object([("cpu", .number("2")), ("memory", .string("2G"))])),
                ("gpu", .string("1")),
            ])
        ),
        ("maxReplicas", .number("1")),
        ("sockets", .array([.object([("port", .number("8080")), ("inputBuffer", .string("input"))])])),
    ])

    static let run: FuzzValue = .object([
        ("kind", .string("user")),
        (
            "job",
            .object([
                ("codespec", codespec),
                ("buffers", .object([("input", .string("_")), ("output", .string("_"))])),
                ("tags", .object([("t", .string("v"))])),
                ("replicas", .number("1")),
                ("bufferTtl", .string("01:00:00")),
            ])
        ),
        ("timeoutSeconds", .number("60")),
        ("tags", .object([("k", .string("v"))])),
        ("bufferAccessTtl", .string("00:05:00")),
    ])

    static let namedRun: FuzzValue = .object([
        ("job", .object([("codespec", .string("fuzz/versions/1")), ("replicas", .number("1"))])),
        ("timeoutSeconds", .number("1e16")),
    ])

    static let buffer: FuzzValue = .object([("tags", .object([("a", .string("b")), ("c", .string(""))]))])

    static let bufferUpdate: FuzzValue = .object([
        ("id", .string("x")),
        ("expiresAt", .string("2030-01-01T00:00:00Z")),
        ("tags", .object([("a", .string("b"))])),
    ])

    static let runUpdate: FuzzValue = .object([("id", .number("1")), ("tags", .object([("a", .string("b"))]))])

    /// Pieces of sizes (`1.5K`, `4MiB`).
    static let sizePieces = ["0", "1", "4", "1.5", ".", "K", "M", "G", "T", "P", "iB", "B", "b", " ", "-", "e", "9999"]
    /// Pieces of Go-style durations (`1m30s`, `500ms`).
    static let durationPieces = [
        "0", "1", "30", "1.5", ".", "h", "m", "s", "ms", "us", "µs", "ns", "d", " ", "-", "e9",
    ]
    /// Pieces of RFC 3339 times (with and without a zone).
    static let timePieces = [
        "2026", "-", "11", "-26", "T", "t", " ", "07", ":", "00", ":00", ".", "123456789123", "Z", "z", "+05:30",
        "-00:00",
        "+24:00", "9999", "0000", "02-29", "2024-02-29", "2025-02-29", "23:59:60", "2026-11-26T07:00:00",
    ]
    /// Pieces of .NET `TimeSpan` values (`1.02:03:04.5`).
    static let timeSpanPieces = ["0", "1", "23", "59", "60", ".", ":", "10675199", "10675200", "1234567", " ", "-"]
    /// Pieces of query strings.
    static let queryPieces = [
        "&", "=", "limit", "tag", "tag[", "]", "excludeTag[a]", "tag%5Bk%5D", "since", "_ct", "status", "Running",
        "softDeleted", "true", "1", "2000", "2001", "-1", "%", "%zz", "%00", "+", "2026-11-26T07:00:00Z", "ttl",
        "00:05:00", "tail", "timestamps", "preferTcp", "api-version", "1.0", "a", "k", "v",
    ]
    /// Pieces of blob names.
    static let blobNamePieces = [
        ".bufferstart", ".bufferend", "00", "/", "000", "0", "ff", "..", ".", "%2e%2e", "%2F", "%00", "a", "//",
        String(repeating: "x", count: 256), "é", "%", "?", "#",
    ]
    /// Pieces of signed-URL queries.
    static let signedQueryPieces = [
        "sv=2021-08-06", "&", "sp=r", "sp=rcw", "sp=", "se=2099-01-01T00:00:00Z", "se=1999-01-01T00:00:00Z", "sig=",
        "sig=AAAA", "sr=c", "st=", "=", "%", "%2B", "+", "se=2099-13-01T00:00:00Z",
        "sig=" + String(repeating: "A", count: 5000),
    ]
}
