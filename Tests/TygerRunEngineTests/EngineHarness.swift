import Foundation
import Logging
import NIOCore
import Synchronization
import TygerCore
import TygerDataPath
import TygerIO
import TygerModel
import TygerStorage
import TygerTestSupport

@testable import TygerRunEngine

/// A byte source over an array.
final class BytesSource: ByteSource {
    private let bytes: [UInt8]
    private let offset = Mutex(0)
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var supportsTimeouts: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        offset.withLock { o in
            let n = min(buffer.count, bytes.count - o)
            if n <= 0 { return .endOfStream }
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[o..<(o + n)])) }
            o += n
            return .bytes(n)
        }
    }
}

/// A sink collecting bytes (or only their CRC and count when `keep` is false).
final class CollectingSink: ByteSink {
    private let state = Mutex<(bytes: [UInt8], crc: UInt32, count: Int64)>(([], 0, 0))
    let keep: Bool
    init(keep: Bool = true) { self.keep = keep }
    func write(_ chunk: OutputChunk) throws {
        state.withLock { s in
            if keep { s.bytes.append(contentsOf: chunk.bytes) }
            s.crc = Checksums.crc32c(chunk.bytes, seed: s.crc)
            s.count += Int64(chunk.bytes.count)
        }
    }
    func finish() throws {}
    var bytes: [UInt8] { state.withLock { $0.bytes } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var crc: UInt32 { state.withLock { $0.crc } }
    var count: Int64 { state.withLock { $0.count } }
}

/// The expiry times the engine gave the buffers it created: at creation and when their run ended.
final class BufferExpiries: Sendable {
    private let state = Mutex<(created: [String: Date?], ended: [String: Date])>(([:], [:]))
    func created(_ id: String, _ expiresAt: Date?) { state.withLock { $0.created[id] = expiresAt } }
    func ended(_ ids: [String], _ expiresAt: Date) { state.withLock { for id in ids { $0.ended[id] = expiresAt } } }
    /// The expiry a buffer got at creation (`.some(nil)`: none), `nil` when the engine did not create it.
    func atCreation(_ id: String) -> Date?? { state.withLock { $0.created[id] } }
    func atEnd(_ id: String) -> Date? { state.withLock { $0.ended[id] } }
}

/// An engine over a temporary directory with file-backed buffers.
struct Harness {
    /// The directory the harness made (and removes when the last copy of the harness goes); `nil` for a given root.
    let owned: TemporaryDirectory?
    let root: String
    let buffers: String
    let engine: RunEngine
    let store: SQLiteRunEngineStore?
    let expiries = BufferExpiries()

    init(
        root: String? = nil,
        sqlite: Bool = false,
        grace: Duration = .seconds(5),
        clock: WallClock = .system,
        runBufferTTL: Duration? = .seconds(86_400)
    ) throws {
        owned = root == nil ? TemporaryDirectory(prefix: "tyger-runs") : nil
        let root = root ?? owned!.path  // one of the two is set
        try FileManager.default.createDirectory(atPath: root + "/buffers", withIntermediateDirectories: true)
        self.root = root
        let buffers = root + "/buffers"
        self.buffers = buffers
        let store = sqlite ? try SQLiteRunEngineStore(directory: root + "/db") : nil
        self.store = store
        var configuration = RunEngineConfiguration(dataDirectory: root + "/data")
        configuration.terminationGrace = grace
        configuration.pendingSweepInterval = .milliseconds(200)
        configuration.runBufferTTL = runBufferTTL
        let expiries = expiries
        engine = RunEngine(
            configuration: configuration,
            codespecs: store?.codespecs ?? InMemoryCodespecRepository(),
            runs: store?.runs ?? InMemoryRunRepository(),
            blobStore: { id in FileBlobStore(directory: buffers + "/" + id) },
            createBuffer: { _, expiresAt in
                let id = UUID().uuidString.lowercased()
                try await FileBlobStore(directory: buffers + "/" + id).createContainer()
                expiries.created(id, expiresAt)
                return id
            },
            expireBuffers: { ids, expiresAt in expiries.ended(ids, expiresAt) },
            clock: clock,
            logger: Logger(label: "test")
        )
    }

    func blobStore(_ id: String) -> FileBlobStore { FileBlobStore(directory: buffers + "/" + id) }

    func newBuffer() async throws -> String {
        let id = UUID().uuidString.lowercased()
        try await blobStore(id).createContainer()
        return id
    }

    func write(_ text: String, to id: String) async throws {
        _ = try await BufferWriter.write(from: BytesSource(Array(text.utf8)), to: blobStore(id))
    }

    func read(_ id: String) async throws -> String {
        let sink = CollectingSink()
        _ = try await BufferReader.read(from: blobStore(id), to: sink)
        return sink.text
    }

    /// Polls until the run is terminal or `timeout` passes (wide: in a full parallel run on two cores a run that
    /// takes a moment alone took over 30 s once).
    func waitForTerminal(_ id: Int64, timeout: Duration = .seconds(90)) async throws -> Run {
        let deadline = ContinuousClock.now + timeout
        while true {
            let run = try await engine.getRun(id: id)
            if (run.status ?? .pending).isTerminal || ContinuousClock.now > deadline { return run }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func waitForStatus(_ id: Int64, _ status: RunStatus, timeout: Duration = .seconds(60)) async throws -> Run {
        let deadline = ContinuousClock.now + timeout
        while true {
            let run = try await engine.getRun(id: id)
            if run.status == status || (run.status ?? .pending).isTerminal || ContinuousClock.now > deadline {
                return run
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func logs(_ id: Int64, _ options: RunLogOptions = RunLogOptions()) async throws -> String {
        var out: [UInt8] = []
        for try await chunk in try await engine.logs(id: id, options: options) { out += chunk.readableBytesView }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Runs `body` while the engine service runs.
func withRunningEngine<R: Sendable>(_ harness: Harness, _ body: @Sendable (Harness) async throws -> R) async throws -> R
{
    defer { withExtendedLifetime(harness) {} }  // its directory goes with it
    return try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask {
            try await harness.engine.run()
            return nil
        }
        do {
            let result = try await body(harness)
            group.cancelAll()
            while let _ = try await group.next() {}
            return result
        } catch {
            group.cancelAll()
            while let _ = try? await group.next() {}
            throw error
        }
    }
}

func job(_ command: [String], inputs: [String] = [], outputs: [String] = [], env: [String: String]? = nil) -> Codespec {
    Codespec(
        image: "ubuntu",
        command: command,
        env: env,
        buffers: inputs.isEmpty && outputs.isEmpty ? nil : BufferParameters(inputs: inputs, outputs: outputs)
    )
}
