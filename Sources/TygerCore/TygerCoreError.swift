/// The error thrown by the core: format, integrity, codec and parsing failures.
public struct TygerCoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. A struct, not an enum, so new codes do not break clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case unsupportedFormat, corruptMetadata, checksumMismatch, hashChainMismatch, corruptBlob
            case invalidArgument, missingBlob, bufferFailed, bufferAbandoned, cancelled, inputMismatch
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// `.bufferstart` names a format this build does not read.
        public static let unsupportedFormat = Code(.unsupportedFormat)
        /// A metadata blob or blob metadata could not be parsed.
        public static let corruptMetadata = Code(.corruptMetadata)
        /// A blob's bytes do not match its checksum.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// The cumulative hash chain does not match: blobs reordered, replaced or metadata tampered.
        public static let hashChainMismatch = Code(.hashChainMismatch)
        /// A blob could not be decoded (bad deflate stream, wrong raw length, unknown encoding).
        public static let corruptBlob = Code(.corruptBlob)
        /// A size, duration or other argument could not be parsed.
        public static let invalidArgument = Code(.invalidArgument)
        /// A blob before the end of the buffer is missing.
        public static let missingBlob = Code(.missingBlob)
        /// The buffer is in a permanently failed state.
        public static let bufferFailed = Code(.bufferFailed)
        /// The buffer's writer went away without finishing it.
        public static let bufferAbandoned = Code(.bufferAbandoned)
        /// The operation was cancelled.
        public static let cancelled = Code(.cancelled)
        /// A resumed write's input (or its block size or compression) is not the interrupted write's: the buffer is
        /// left as it was.
        public static let inputMismatch = Code(.inputMismatch)

        public var description: String { "\(value)" }
    }

    public var code: Code
    /// A human message, printed as is by the CLI.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// An error that may stop a transfer without anything being wrong with its data: the link was lost. A write stopped
/// by one leaves its buffer abandoned (resumable) instead of marking it failed.
public protocol TransferInterruption: Error {
    /// Whether this error is such an interruption.
    var interruptsTransfer: Bool { get }
}
