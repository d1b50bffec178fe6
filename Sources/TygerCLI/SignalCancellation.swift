#if canImport(Glibc)
import Glibc
#endif
import Dispatch
private import Synchronization

/// Turns SIGINT/SIGTERM into a cancellation callback. A second signal exits with 130.
enum SignalCancellation {
    private static let state = Mutex<(sources: [any DispatchSourceSignal], count: Int)>(([], 0))

    static func install(_ onSignal: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                let count = state.withLock { $0.count += 1; return $0.count }
                if count > 1 { _exit(130) }
                Log.shared.warn("Canceling...")
                onSignal()
            }
            source.resume()
            state.withLock { $0.sources.append(source) }
        }
    }
}
