/// The ID of an ephemeral buffer: a run argument `_` that the run engine relays between a client and the run's
/// named pipe without storing anything, written `run-<runId>-temp-<suffix>` (upstream's form).
///
/// This is the one parser of these IDs: the server's buffer access, the relay and the run engine all use it.
///
/// ```swift
/// let id = EphemeralBufferID("run-12-temp-abc")   // runId 12, suffix "abc"
/// EphemeralBufferID("3fzq…")                       // nil: a stored buffer
/// ```
public struct EphemeralBufferID: Sendable, Hashable, CustomStringConvertible {
    /// The run the buffer belongs to.
    public let runId: Int64
    /// The part after `-temp-`: letters and digits; access URLs are signed for it.
    public let suffix: String

    /// Parses `run-<digits>-temp-<letters and digits>`.
    ///
    /// - Parameter text: A buffer ID.
    /// - Returns: `nil` when `text` is not an ephemeral buffer ID.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "run", parts[2] == "temp",
            !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let runId = Int64(parts[1]),
            !parts[3].isEmpty, parts[3].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else { return nil }
        self.runId = runId
        self.suffix = String(parts[3])
    }

    /// Makes a new random ID for an ephemeral argument of `runId` (26 lowercase base32 characters after `-temp-`).
    ///
    /// - Parameter runId: The run.
    public init(runId: Int64) {
        self.runId = runId
        self.suffix = BufferID.generate()
    }

    /// `run-<runId>-temp-<suffix>`.
    public var description: String { "run-\(runId)-temp-\(suffix)" }

    /// Whether `id` stands for an ephemeral buffer: `run-<id>-temp-<x>`, or `temp-<x>` before its run exists.
    ///
    /// - Parameter id: A buffer ID or run argument.
    /// - Returns: `true` for ephemeral buffer IDs.
    public static func isEphemeral(_ id: String) -> Bool { id.hasPrefix("temp-") || EphemeralBufferID(id) != nil }
}
