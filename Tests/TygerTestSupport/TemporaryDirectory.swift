import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under `parent` (`/tmp`), removed with everything in it when the body returns or throws.
///
/// - Parameters:
///   - prefix: The start of the directory's name, to tell test leftovers apart.
///   - parent: The directory to make it in.
///   - body: Receives the directory's absolute path.
/// - Returns: What `body` returns.
/// - Throws: What `body` throws, or `TestSupportError` when the directory cannot be made.
public func withTemporaryDirectory<T>(
    prefix: String = "tyger-test",
    under parent: String = "/tmp",
    _ body: (String) async throws -> T
) async throws -> T {
    let path = try makeTemporaryDirectory(prefix: prefix, under: parent)
    defer { removeTree(path) }
    return try await body(path)
}

/// Runs `body` with a new empty directory in memory (under `/dev/shm` where it exists, else `/tmp`), removed after:
/// for tests that race file operations many times and must not wait for a busy disk.
public func withMemoryDirectory<T>(prefix: String = "tyger-test", _ body: (String) async throws -> T) async throws -> T
{
    try await withTemporaryDirectory(prefix: prefix, under: access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", body)
}

/// The synchronous form of `withTemporaryDirectory(prefix:_:)`.
public func withTemporaryDirectorySync<T>(prefix: String = "tyger-test", _ body: (String) throws -> T) throws -> T {
    let path = try makeTemporaryDirectory(prefix: prefix)
    defer { removeTree(path) }
    return try body(path)
}

/// Creates a unique directory under `parent` (`/tmp`); the caller removes it (see `removeTree`).
public func makeTemporaryDirectory(prefix: String = "tyger-test", under parent: String = "/tmp") throws -> String {
    var template = Array("\(parent)/\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }  // the array is never empty
    guard made != nil else { throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))") }
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Removes a file or a directory tree, ignoring errors.
public func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// A FIFO at a fresh path inside a temporary directory, removed when the body returns or throws.
///
/// - Parameter body: Receives the FIFO's path and the directory that holds it (free for other test files).
public func withTemporaryFIFO<T>(_ body: (_ fifo: String, _ directory: String) async throws -> T) async throws -> T {
    try await withTemporaryDirectory(prefix: "tyger-fifo") { dir in
        let path = dir + "/fifo"
        guard mkfifo(path, 0o600) == 0 else {
            throw TestSupportError("mkfifo \(path) failed: \(String(cString: strerror(errno)))")
        }
        return try await body(path, dir)
    }
}

/// A failure of the test helpers themselves.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` passes.
///
/// - Returns: Whether the condition held before the deadline.
public func eventually(
    timeout: Duration,
    every interval: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// Simple file helpers for tests (whole-file reads and writes).
public enum TestFiles {
    /// The contents of a file.
    public static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestSupportError("cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Writes (creating or replacing) a file.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw TestSupportError("cannot write \(path)")
        }
    }

    /// Creates a directory and any missing parents.
    public static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Opens a path for writing off the cooperative pool (a FIFO's open waits for its reader).
    ///
    /// - Returns: A close-on-exec descriptor; the caller closes it.
    public static func openForWriting(_ path: String) async throws -> Int32 {
        try await onThread {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TestSupportError("open \(path): \(String(cString: strerror(errno)))") }
            return fd
        }
    }

    /// Writes all of `bytes` to a descriptor (blocking).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            // count > offset, so the base address exists.
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestSupportError("write: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Closes a descriptor.
    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Whether a path exists (any kind of file).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Every regular file under `directory`, as paths relative to it, sorted.
    public static func regularFiles(under directory: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: directory) else { return [] }
        var out: [String] = []
        while let item = e.nextObject() as? String {
            var st = stat()
            if stat(directory + "/" + item, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { out.append(item) }
        }
        return out.sorted()
    }
}

/// A fresh directory under `/tmp` that lives as long as this object: removed, with everything in it, on deinit. For
/// fixtures held by a value (a harness, a server) rather than a scope.
public final class TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// - Parameter prefix: The start of the directory's name, to tell test leftovers apart.
    public init(prefix: String = "tyger-test") {
        do {
            path = try makeTemporaryDirectory(prefix: prefix)
        } catch {
            preconditionFailure("\(error)")
        }
    }

    deinit { removeTree(path) }
}
