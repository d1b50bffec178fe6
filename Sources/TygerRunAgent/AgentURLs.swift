import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TygerClient
import TygerModel
import TygerRunEngine

/// The agent's signed URLs (reports, relays, stored buffers), renewed before they expire: a run may outlast one
/// URL's lifetime (at most 24 hours). A renewal is asked with the URLs held (`POST <report path>/renew`) and gives
/// them all again (``AgentRenewal``); one runs at a time, and a URL refused as expired asks for one at once.
final class AgentURLs: Sendable {
    private struct State {
        var reportURL: String
        var buffers: [String: String]
        var expiresAt: Date?
        /// The renewal under way, which concurrent askers share.
        var renewing: Task<Bool, Never>?
        /// How many renewals were taken (tests read it in the agent's log).
        var renewals = 0
    }
    private let state: Mutex<State>
    private let transport: HTTPTransport
    /// `replica=N` or `worker=N`: who asks (only the job's replica 0 gets the buffers' URLs).
    private let asker: String

    init(launch: AgentLaunch, transport: HTTPTransport) {
        asker = (launch.worker == true ? "worker=" : "replica=") + String(launch.replica)
        var buffers: [String: String] = [:]
        for buffer in launch.buffers where !buffer.isRelayed { buffers[buffer.name] = buffer.url }
        state = Mutex(
            State(reportURL: launch.reportURL, buffers: buffers, expiresAt: launch.expiresAt.flatMap(RFC3339.parse))
        )
        self.transport = transport
    }

    var reportURL: String { state.withLock { $0.reportURL } }
    var expiresAt: Date? { state.withLock { $0.expiresAt } }
    var renewals: Int { state.withLock { $0.renewals } }

    /// The current access URL of stored buffer `name`.
    func buffer(_ name: String) -> String? { state.withLock { $0.buffers[name] } }

    /// When to renew URLs that expire at `expiresAt`, seen at `now`: half their remaining life before, at most an
    /// hour before (a URL of 24 h is renewed after 23 h; one of a minute after 30 s).
    static func renewalTime(expiresAt: Date, now: Date) -> Date {
        let remaining = max(0, expiresAt.timeIntervalSince(now))
        return expiresAt.addingTimeInterval(-min(remaining / 2, 3600))
    }

    /// Renews the URLs before they expire, until cancelled. A failed renewal is tried again (every 5 s, then less
    /// often). Once a renewal gives no later expiry, the URLs already last past the run's deadline: no more.
    func keepFresh() async {
        var failures = 0
        while !Task.isCancelled {
            guard let expiresAt else { return }
            let at =
                failures == 0
                ? Self.renewalTime(expiresAt: expiresAt, now: Date())
                : Date().addingTimeInterval(min(5 * Double(1 << min(failures - 1, 4)), 60))
            // At least 5 s apart, whatever the clocks say.
            let wait = max(at.timeIntervalSinceNow, failures == 0 ? 5 : 0)
            do { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) } catch { return }
            if await renew() {
                failures = 0
                if let renewed = self.expiresAt, renewed.timeIntervalSince(expiresAt) < 1 { return }
            } else {
                failures += 1
            }
        }
    }

    /// Asks the server for fresh URLs (or joins the request under way); whether it gave them.
    @discardableResult
    func renew() async -> Bool {
        let task = state.withLock { s -> Task<Bool, Never> in
            if let running = s.renewing { return running }
            let reportURL = s.reportURL
            let task = Task { await self.fetch(reportURL) }
            s.renewing = task
            return task
        }
        let renewed = await task.value
        state.withLock { s in if s.renewing == task { s.renewing = nil } }
        return renewed
    }

    /// A fresh URL of stored buffer `name`, for a store whose URL was refused as expired.
    func refreshed(_ name: String) async throws -> ServiceURL {
        await renew()
        guard let url = buffer(name) else {
            throw RunAgentError(message: "the server gave no access URL for '\(name)'")
        }
        return try ServiceURL(url)
    }

    private func fetch(_ reportURL: String) async -> Bool {
        guard let url = try? ServiceURL(AgentLaunch.url(under: reportURL, "renew", query: asker)),
            let response = try? await transport.send(
                .POST,
                url,
                headers: [:],
                body: ByteBuffer(),
                maxBody: 1 << 20,
                timeout: .seconds(30)
            )
        else { return false }
        guard response.status == 200,
            let renewal = try? JSONDecoder().decode(AgentRenewal.self, from: Data(response.body.readableBytesView)),
            let expiresAt = RFC3339.parse(renewal.expiresAt)
        else {
            FileHandle.standardError.write(
                Data(
                    "tyger run-agent: the server did not renew the run's URLs: \(response.status) \(response.text)\n"
                        .utf8
                )
            )
            return false
        }
        state.withLock { s in
            s.reportURL = renewal.reportURL
            s.buffers.merge(renewal.buffers) { _, new in new }
            s.expiresAt = expiresAt
            s.renewals += 1
        }
        return true
    }
}
