import ArgumentParser
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage

/// `tyger buffer …`
struct BufferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buffer",
        abstract: "Write, read and generate buffers.",
        subcommands: [
            Create.self, Show.self, List.self, Set.self, Delete.self, Restore.self, Purge.self, Access.self,
            Write.self, Read.self, Gen.self, Bench.self, StorageAccount.self,
        ],
        aliases: ["buffers"]
    )
}

/// `--compress` values.
enum CompressOption: String, ExpressibleByArgument, CaseIterable {
    case none, fast, best
    var level: CompressionLevel { CompressionLevel(rawValue: rawValue)! }  // same case names
}

/// Which implementation moves bytes between descriptors (for benchmarks; `read` is the fastest here).
enum IOMode: String, ExpressibleByArgument, CaseIterable {
    /// Plain read/write loops on dedicated threads, 1 MiB pipes, vmsplice for mapped blobs.
    case syscalls
    /// Like `syscalls` but never vmsplice: every byte is copied with write(2).
    case copy
    /// DispatchIO stream channels.
    case dispatch
}

/// How `read`/`write` by buffer ID reach the data (hidden flag, for benchmarks and tests).
enum TransportMode: String, ExpressibleByArgument, CaseIterable {
    /// The local directory when the embedded server's data is readable, else HTTP.
    case auto
    /// Always the data plane over HTTP.
    case http
}

/// The largest degree of parallelism (`--dop`, `--write-dop`, `--read-dop`): requests in flight at once.
let maxDop = 1024

/// Concurrent blob uploads when `--dop` / `--write-dop` is not given, into a directory and over HTTP alike. (Over HTTP
/// it was 6 while the server wrote through the page cache, where more uploads contended; with direct writes 16 wrote
/// 4 GiB by ID faster than 6 in five of five paired runs on 127.0.0.1: docs/performance.md.)
let defaultWriteDop = 16

/// Checks a degree of parallelism: 1 to ``maxDop`` (`nil`, the default, passes).
func validateDop(_ dop: Int?, option: String) throws {
    guard let dop else { return }
    guard (1...maxDop).contains(dop) else {
        throw ValidationError("\(option) must be from 1 to \(maxDop), got \(dop)")
    }
}

func parseSize(_ text: String, option: String) throws -> Int64 {
    do { return try ByteSize.parse(text) } catch let e as TygerCoreError {
        throw ValidationError("\(option): \(e.message)")
    }
}

/// Opens a path for reading or writing, off the cooperative pool (a FIFO's open blocks until its peer opens).
func openPath(_ path: String, forWriting: Bool) async throws -> Int32 {
    try await openPath(path, mode: forWriting ? .writeTruncating : .read, for: forWriting ? "writing" : "reading")
}

/// Opens `path` with `mode` off the cooperative pool; a failure is one line naming the path and `purpose`.
private func openPath(_ path: String, mode: PathOps.OpenMode, for purpose: String) async throws -> Int32 {
    do {
        return try await DedicatedThread.run(name: "tyger-open") { try PathOps.open(path, mode: mode) }
    } catch let error as TygerIOError {
        let reason = error.errno.map(ProcessOps.describe(errno:)) ?? error.message
        throw CommandFailure("cannot open '\(path)' for \(purpose): \(reason)")
    }
}

/// Opens `path` to append to it, created if missing: a regular file, whose size is where a resumed read goes on.
func openForAppending(_ path: String) async throws -> Int32 {
    let fd = try await openPath(path, mode: .append(permissions: 0o644), for: "appending")
    guard FileDescriptorOps.kind(fd) == .regular else {
        FileDescriptorOps.close(fd)
        throw CommandFailure("a read can be resumed only into a regular file: '\(path)' is not one")
    }
    return fd
}

/// How a resumed write takes its input `fd`: a regular file is moved past the bytes stored already (refused when it
/// is shorter than they are); anything else is read again and checked against them.
func resumedInput(_ fd: Int32) -> ResumedInput {
    guard FileDescriptorOps.kind(fd) == .regular else { return .resent }
    return .seekable(seek: { offset in
        let size = FileDescriptorOps.size(fd) ?? 0
        guard size >= offset else {
            throw TygerCoreError(
                .inputMismatch,
                "the input holds \(size) bytes, fewer than the \(offset) the buffer holds already: --resume needs "
                    + "the interrupted write's input"
            )
        }
        try FileDescriptorOps.seek(fd, to: offset)
    })
}

/// `--request-timeout`: `adaptive` (the default: each blob request's timeout follows the measured rate) or a duration
/// every request gets (`5s`, `100s`: upstream's client has a fixed 100 s).
func parseRequestTimeout(_ text: String?) throws -> RequestTimeout {
    guard let text, text.lowercased() != "adaptive" else { return .adaptive }
    do {
        let d = try DurationParser.parse(text)
        guard d > .zero else { throw ValidationError("--request-timeout must be positive, got '\(text)'") }
        return .fixed(d)
    } catch let e as TygerCoreError {
        throw ValidationError("--request-timeout: \(e.message) (or 'adaptive')")
    }
}
