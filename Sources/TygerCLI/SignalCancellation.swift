import Logging
private import Synchronization
import TygerIO

/// Turns SIGINT/SIGTERM into a cancellation callback. A second signal exits with 130.
enum SignalCancellation {
    private static let count = Mutex(0)

    static func install(_ onSignal: @escaping @Sendable () -> Void) {
        ProcessOps.onSignals([.interrupt, .terminate]) { _ in
            let n = count.withLock {
                $0 += 1
                return $0
            }
            if n > 1 { ProcessOps.exitImmediately(130) }
            logger.warning("Canceling...")
            onSignal()
        }
    }
}
