import Synchronization

/// Wake-ups for the loops that follow what other servers do on a shared database (cancel requests, run states, log
/// pieces), fired by the database's notices (``RunCoordination/listen(_:)``).
///
/// A loop takes the trigger of what it follows **before** it reads the database and waits on it (or its poll
/// interval) after, so a change committed after the read wakes it even when its notice came before the wait.
final class ChangeSignals: Sendable {
    enum Key: Hashable, Sendable {
        /// Any cancel request (the owner takes them all at once).
        case cancels
        /// Run `id`'s state.
        case run(Int64)
        /// Run `id`'s log (its followers also stop when it ends, so a change of its state wakes them too).
        case log(Int64)
    }

    private let triggers = Mutex<[Key: Trigger]>([:])

    /// The trigger the next change of `key` fires.
    func next(_ key: Key) -> Trigger {
        triggers.withLock { triggers in
            if let trigger = triggers[key] { return trigger }
            let trigger = Trigger()
            triggers[key] = trigger
            return trigger
        }
    }

    /// Wakes the loops waiting for `change`.
    func fire(_ change: CoordinationChange) {
        let keys: [Key] =
            switch change {
            case .cancelRequested: [.cancels]
            case .runChanged(let id): [.run(id), .log(id)]
            case .logAppended(let id): [.log(id)]
            }
        let fired = triggers.withLock { triggers in keys.compactMap { triggers.removeValue(forKey: $0) } }
        for trigger in fired { trigger.fire() }
    }

    /// Waits until `trigger` fires, `interval` passes or `stopping` fires.
    static func wait(_ trigger: Trigger, upTo interval: Duration, unless stopping: Trigger? = nil) async {
        if let stopping {
            _ = await untilTriggered(stopping) {
                await untilTriggered(trigger) { try? await Task.sleep(for: interval) }
            }
        } else {
            _ = await untilTriggered(trigger) { try? await Task.sleep(for: interval) }
        }
    }
}
