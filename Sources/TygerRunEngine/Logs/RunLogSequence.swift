public import Foundation
public import NIOCore
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// What `RunEngine.logs(runId:options:)` returns.
public struct RunLogOptions: Sendable, Hashable {
    /// Keep each line's RFC 3339 timestamp (first space-delimited token).
    public var timestamps: Bool
    /// Only the last N lines (nil: all).
    public var tailLines: Int?
    /// Only lines stamped strictly after this.
    public var since: Date?
    /// Keep streaming new lines until the run has ended and its processes' output is drained.
    public var follow: Bool

    public init(timestamps: Bool = false, tailLines: Int? = nil, since: Date? = nil, follow: Bool = false) {
        self.timestamps = timestamps
        self.tailLines = tailLines
        self.since = since
        self.follow = follow
    }
}

/// A run's log as a stream of byte buffers (whole lines), read from its log file on demand: back-pressure is the
/// consumer's pace. With `follow` it waits for new lines while `isLive()` says the run is still writing.
public struct RunLogSequence: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let path: String
    let options: RunLogOptions
    let isLive: @Sendable () -> Bool

    public func makeAsyncIterator() -> Iterator { Iterator(path: path, options: options, isLive: isLive) }

    public struct Iterator: AsyncIteratorProtocol {
        private let path: String
        private let options: RunLogOptions
        private let isLive: @Sendable () -> Bool
        private var file: OwnedDescriptor?
        private var carry: [UInt8] = []
        private var skip = 0
        private var done = false
        private let sinceText: [UInt8]?
        private var buffer = [UInt8](repeating: 0, count: 64 << 10)

        init(path: String, options: RunLogOptions, isLive: @escaping @Sendable () -> Bool) {
            self.path = path
            self.options = options
            self.isLive = isLive
            // Compared at microsecond precision: a Date cannot hold a stamp's nanoseconds exactly, and a client
            // reconnecting with `since` = the last stamp it saw must not get that line again.
            self.sinceText = options.since.map { Array(RFC3339.format($0, trimZeros: false).utf8) }
        }

        public mutating func next() async throws -> ByteBuffer? {
            if done { return nil }
            while file == nil {
                let live = isLive()
                let opened = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                guard opened >= 0 else {
                    // No log yet: a Pending run being followed gets one when it starts.
                    if options.follow && live {
                        try await Task.sleep(for: .milliseconds(50))
                        continue
                    }
                    done = true
                    return nil
                }
                file = OwnedDescriptor(opened)
                if let tail = options.tailLines {
                    skip = Swift.max(0, countLines() - Swift.max(0, tail))
                }
            }
            let fd = file!.fd  // opened above
            var out = ByteBuffer()
            while true {
                let wasLive = isLive()
                let n = Glibc.read(fd, &buffer, buffer.count)
                if n > 0 {
                    emitLines(buffer[0..<n], into: &out)
                    if out.readableBytes > 0 { return out }
                    continue
                }
                // End of the file for now.
                if options.follow && wasLive {
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                done = true
                file = nil
                return out.readableBytes > 0 ? out : nil
            }
        }

        private func countLines() -> Int {
            let counter = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard counter >= 0 else { return 0 }
            defer { Glibc.close(counter) }
            var count = 0
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = Glibc.read(counter, &chunk, chunk.count)
                if n <= 0 { break }
                for i in 0..<n where chunk[i] == 0x0A { count += 1 }
            }
            return count
        }

        private mutating func emitLines(_ bytes: ArraySlice<UInt8>, into out: inout ByteBuffer) {
            var start = bytes.startIndex
            while let nl = bytes[start...].firstIndex(of: 0x0A) {
                if carry.isEmpty {
                    emit(bytes[start...nl], into: &out)
                } else {
                    carry.append(contentsOf: bytes[start...nl])
                    let line = carry
                    carry.removeAll(keepingCapacity: false)
                    emit(line[...], into: &out)
                }
                start = nl + 1
            }
            if start < bytes.endIndex { carry.append(contentsOf: bytes[start...]) }
        }

        /// One stored line `<timestamp> <text>\n`, filtered and formatted.
        private mutating func emit(_ line: ArraySlice<UInt8>, into out: inout ByteBuffer) {
            if skip > 0 {
                skip -= 1
                return
            }
            let space = line.firstIndex(of: 0x20) ?? line.endIndex
            if let sinceText {
                let stamp = line[line.startIndex..<space]
                // `YYYY-MM-DDTHH:MM:SS.ffffff` + `Z`, from the stored 9-digit stamp.
                let micros = Array(stamp.prefix(26)) + [0x5A]
                if !sinceText.lexicographicallyPrecedes(micros) { return }
            }
            if options.timestamps {
                out.writeBytes(line)
            } else {
                out.writeBytes(line[(space < line.endIndex ? space + 1 : space)...])
            }
        }
    }
}
