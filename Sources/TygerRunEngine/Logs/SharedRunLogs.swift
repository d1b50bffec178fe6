import Foundation
import Logging
import Synchronization
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// Run logs on servers that share a database: the server that supervises a run ships its log file to the database
/// in pieces as it grows (whole lines, every second, the rest when the run ends); another server asked for that
/// run's log copies the stored pieces into a log file of its own and serves it like its own runs' logs, following
/// it while the run goes on.
extension RunEngine {
    /// The most bytes one stored piece holds.
    static let logPieceLimit = 4 << 20

    /// Ships the log of `supervisor`'s run until the run has ended and all of its log is stored.
    func shipLog(of supervisor: RunSupervisor, _ coordination: any RunCoordination) async {
        let path = logPath(supervisor.runId)
        var shipped: Int64 = 0
        var failingSince: ContinuousClock.Instant?
        while !crashed.withLock({ $0 }) {
            let final = supervisor.finished.isFired
            let piece = Self.readLog(path, from: shipped, wholeLinesOnly: !final, limit: Self.logPieceLimit)
            if !piece.isEmpty {
                do {
                    try await coordination.appendLog(runId: supervisor.runId, offset: shipped, bytes: piece)
                    shipped += Int64(piece.count)
                    failingSince = nil
                    if piece.count >= Self.logPieceLimit { continue }
                } catch {
                    let since = failingSince ?? .now
                    if failingSince == nil {
                        logger.warning(
                            "cannot store a run's log in the database; retrying",
                            metadata: ["run.id": "\(supervisor.runId)", "error": "\(error)"]
                        )
                    }
                    failingSince = since
                    // A run that has ended gives up after a while (its log stays on this server).
                    if final && ContinuousClock.now - since > .seconds(10) { return }
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
            }
            if final { return }
            _ = await untilTriggered(supervisor.finished) { try? await Task.sleep(for: .seconds(1)) }
        }
    }

    /// Up to `limit` bytes of the file at `path` from `offset`; with `wholeLinesOnly`, up to the last newline (unless
    /// a line is longer than `limit`).
    static func readLog(_ path: String, from offset: Int64, wholeLinesOnly: Bool, limit: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let n = bytes.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + count, limit - count, off_t(offset) + off_t(count))
            }
            if n <= 0 { break }
            count += n
        }
        bytes.removeSubrange(count...)
        if wholeLinesOnly, count < limit {
            let end = bytes.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            bytes.removeSubrange(end...)
        }
        return bytes
    }

    /// The copy of run `id`'s stored log on this server.
    func logMirror(_ id: Int64, _ coordination: any RunCoordination) -> RunLogMirror {
        logMirrors.withLock { mirrors in
            if let mirror = mirrors[id] { return mirror }
            let mirror = RunLogMirror(runId: id, path: logPath(id), coordination: coordination, runs: runs)
            mirrors[id] = mirror
            return mirror
        }
    }
}

/// This server's copy of the log of a run another server supervises (or supervised), kept in this server's log file
/// for the run and brought up to date from the database.
actor RunLogMirror {
    let runId: Int64
    let path: String
    let coordination: any RunCoordination
    let runs: any RunRepository
    /// Fired once the run has ended and its stored log is copied: followers stop.
    nonisolated let ended = Trigger()
    private var following = false

    init(runId: Int64, path: String, coordination: any RunCoordination, runs: any RunRepository) {
        self.runId = runId
        self.path = path
        self.coordination = coordination
        self.runs = runs
    }

    /// Copies what the database holds beyond this copy; returns how many bytes it copied.
    @discardableResult
    func sync() async throws -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TygerRunEngineError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var copied = 0
        while true {
            let size = Int64(lseek(fd, 0, SEEK_END))
            let bytes = try await coordination.log(runId: runId, from: size, limit: RunEngine.logPieceLimit)
            if bytes.isEmpty { return copied }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
                guard n > 0 else {
                    throw TygerRunEngineError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))")
                }
                written += n
            }
            copied += bytes.count
        }
    }

    /// Keeps the copy up to date until the run has ended (then fires ``ended``): it looks when a notice of the
    /// run's log or state comes, or every `interval`; once the run has ended, every `settle` until a second passes
    /// without new lines.
    func follow(interval: Duration, settle: Duration, signals: ChangeSignals) {
        guard !following, !ended.isFired else { return }
        following = true
        let runId = runId
        Task {
            var quietAfterEnd: Duration = .zero
            while true {
                let woken = signals.next(.log(runId))
                let run = try? await runs.get(id: runId)
                let copied = (try? await sync()) ?? 0
                if run == nil || (run?.status ?? .pending).isTerminal {
                    // The owner stores the last lines just after the run ends: wait until a second passes quietly.
                    quietAfterEnd = copied > 0 ? .zero : quietAfterEnd + settle
                    if quietAfterEnd >= .seconds(1) { break }
                    try? await Task.sleep(for: settle)
                    continue
                }
                await ChangeSignals.wait(woken, upTo: interval)
            }
            ended.fire()
            stopped()
        }
    }

    private func stopped() { following = false }
}
