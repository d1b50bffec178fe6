import Testing
import TygerIO

#if canImport(Glibc)
import Glibc
#endif

@Suite struct RetryingOnInterruptTests {
    @Test func retriesWhileTheCallIsInterrupted() throws {
        var calls = 0
        let value = try FileDescriptorOps.retryingOnInterrupt("test") { () -> Int in
            calls += 1
            if calls <= 2 {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(value == 42)
        #expect(calls == 3)
    }

    @Test func returnsZeroAndOtherNonFailureValuesAtOnce() throws {
        var calls = 0
        let value = try FileDescriptorOps.retryingOnInterrupt("test") { () -> Int32 in
            calls += 1
            errno = EINTR  // a stale errno does not matter when the call did not fail
            return 0
        }
        #expect(value == 0)
        #expect(calls == 1)
    }

    @Test func throwsAnyOtherErrnoWithoutRetrying() {
        var calls = 0
        let error = #expect(throws: TygerIOError.self) {
            _ = try FileDescriptorOps.retryingOnInterrupt("open", path: "/nowhere") { () -> Int32 in
                calls += 1
                switch calls {
                case 1: errno = EINTR
                case 2: errno = EACCES
                default: return 7  // reached only if EACCES were retried too
                }
                return -1
            }
        }
        #expect(calls == 2)
        #expect(error?.errno == EACCES)
        #expect(error?.code == .system)
        #expect(error?.message.hasPrefix("open /nowhere: ") == true)
    }

    @Test func mapsBrokenPipeLikeTheOtherWrappers() {
        let error = #expect(throws: TygerIOError.self) {
            _ = try FileDescriptorOps.retryingOnInterrupt("write") { () -> Int in
                errno = EPIPE
                return -1
            }
        }
        #expect(error?.code == .brokenPipe)
        #expect(error?.errno == EPIPE)
    }
}
