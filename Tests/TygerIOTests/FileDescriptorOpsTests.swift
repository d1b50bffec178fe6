import Testing
import TygerIO
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileDescriptorOpsTests {
    @Test func kinds() async throws {
        let (r, w) = try makePipe()
        defer {
            FileDescriptorOps.close(r)
            FileDescriptorOps.close(w)
        }
        #expect(FileDescriptorOps.kind(r) == .pipe)
        #expect(FileDescriptorOps.kind(w) == .pipe)
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { FileDescriptorOps.close(null) }
        #expect(FileDescriptorOps.kind(null) == .characterDevice)
        #expect(FileDescriptorOps.kind(-1) == .other)
        try await withTemporaryDirectory { dir in
            let fd = open(dir + "/f", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            defer { FileDescriptorOps.close(fd) }
            #expect(FileDescriptorOps.kind(fd) == .regular)
            #expect(FileDescriptorOps.enlargePipe(fd) == nil)
            let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { FileDescriptorOps.close(d) }
            #expect(FileDescriptorOps.kind(d) == .other)
        }
    }

    @Test func enlargePipeGrowsTheCapacity() throws {
        let (r, w) = try makePipe()
        defer {
            FileDescriptorOps.close(r)
            FileDescriptorOps.close(w)
        }
        let size = try #require(FileDescriptorOps.enlargePipe(w, to: 256 << 10))
        #expect(size >= 256 << 10)
        // It now holds that much without a reader.
        FileDescriptorOps.setNonBlocking(w, true)
        let bytes = [UInt8](repeating: 1, count: 256 << 10)
        try bytes.withUnsafeBytes { try FileDescriptorOps.writeAll(w, $0) }
    }

    @Test func positionalWriteAndRead() async throws {
        try await withTemporaryDirectory { dir in
            let fd = open(dir + "/f", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            defer { FileDescriptorOps.close(fd) }
            let a = Payload.random(count: 5000, seed: 1)
            let b = Payload.random(count: 3000, seed: 2)
            try b.withUnsafeBytes { try FileDescriptorOps.pwriteAll(fd, $0, at: 5000) }
            try a.withUnsafeBytes { try FileDescriptorOps.pwriteAll(fd, $0, at: 0) }
            var back = [UInt8](repeating: 0, count: 8000)
            try back.withUnsafeMutableBytes { try FileDescriptorOps.preadExactly(fd, into: $0, at: 0) }
            #expect(mismatch(back, a + b) == nil)
            var middle = [UInt8](repeating: 0, count: 100)
            try middle.withUnsafeMutableBytes { try FileDescriptorOps.preadExactly(fd, into: $0, at: 4950) }
            #expect(middle == Array(a[4950...]) + Array(b[0..<50]))
            var tooMuch = [UInt8](repeating: 0, count: 101)
            let error = #expect(throws: TygerIOError.self) {
                try tooMuch.withUnsafeMutableBytes { try FileDescriptorOps.preadExactly(fd, into: $0, at: 7900) }
            }
            #expect(error?.message.contains("unexpected end of file") == true)
        }
    }

    @Test func waitReadable() throws {
        let (r, w) = try makePipe()
        defer {
            FileDescriptorOps.close(r)
            FileDescriptorOps.close(w)
        }
        let start = ContinuousClock.now
        #expect(try !FileDescriptorOps.waitReadable(r, timeout: .milliseconds(80)))
        #expect(ContinuousClock.now - start >= .milliseconds(70))
        #expect(try !FileDescriptorOps.waitReadable(r, timeout: .zero))
        try [UInt8(1)].withUnsafeBytes { try FileDescriptorOps.writeAll(w, $0) }
        #expect(try FileDescriptorOps.waitReadable(r, timeout: .seconds(5)))
    }

    @Test func systemErrorsCarryErrnoAndCode() {
        let e1 = TygerIOError.system("open", path: "/x", errno: ENOENT)
        #expect(e1.code == .notFound)
        #expect(e1.errno == ENOENT)
        #expect(e1.message.hasPrefix("open /x: "))
        #expect(TygerIOError.system("write", errno: EPIPE).code == .brokenPipe)
        #expect(TygerIOError.system("read", errno: EIO).code == .system)
    }
}

@Suite struct NamedPipeTests {
    @Test(.timeLimit(.minutes(3)))
    func bothEndsOpenAndCarryData() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/p"
            try NamedPipe.create(at: path)
            var st = stat()
            #expect(stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO)
            async let reader = NamedPipe.openForReading(path)
            let w = try await NamedPipe.openForWriting(path)
            let r = try await reader
            defer { FileDescriptorOps.close(r) }
            #expect(FileDescriptorOps.kind(r) == .pipe)
            try Array("via fifo".utf8).withUnsafeBytes { try FileDescriptorOps.writeAll(w, $0) }
            FileDescriptorOps.close(w)
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = try buffer.withUnsafeMutableBytes { try FileDescriptorOps.read(r, into: $0) }
            #expect(Array(buffer[0..<n]) == Array("via fifo".utf8))
        }
    }

    @Test func createFailsWhenThePathExists() async throws {
        try await withTemporaryDirectory { dir in
            try NamedPipe.create(at: dir + "/p")
            let error = #expect(throws: TygerIOError.self) { try NamedPipe.create(at: dir + "/p") }
            #expect(error?.errno == EEXIST)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func cancellingAPendingOpenReturnsPromptly() async throws {
        // In memory: on a disk busy with other tests' writes, opening a FIFO (its access time) waited for the journal
        // for seconds once, which is not what this test measures.
        try await withMemoryDirectory { dir in
            let path = dir + "/p"
            try NamedPipe.create(at: path)
            for forWriting in [false, true] {
                let task = Task {
                    forWriting ? try await NamedPipe.openForWriting(path) : try await NamedPipe.openForReading(path)
                }
                try await Task.sleep(for: .milliseconds(100))
                let start = ContinuousClock.now
                task.cancel()
                let error = await #expect(throws: TygerIOError.self) { try await task.value }
                #expect(error?.code == .cancelled)
                // Without the cancel, the open waits for a peer that never comes (the time limit would end the test).
                // The bound is loose because the answer travels through the cooperative pool, which other tests'
                // synchronous work has been seen to hold for 10 s at a time on two cores.
                #expect(ContinuousClock.now - start < .seconds(30))
            }
        }
    }

    /// Cancelled before its thread reaches open(2) (a busy machine starts threads late): must not hang.
    ///
    /// In memory, as the test above: on a disk busy with the other tests' writes, the 40 FIFO opens took 77 s once
    /// (each waits for the journal to note the FIFO's access time), past the time limit, without hanging.
    @Test(.timeLimit(.minutes(2)))
    func cancellingAnOpenAtOnceNeverHangs() async throws {
        try await withMemoryDirectory { dir in
            let path = dir + "/p"
            try NamedPipe.create(at: path)
            for i in 0..<40 {
                let forWriting = i % 2 == 1
                let task = Task {
                    forWriting ? try await NamedPipe.openForWriting(path) : try await NamedPipe.openForReading(path)
                }
                task.cancel()
                let error = await #expect(throws: TygerIOError.self) { try await task.value }
                #expect(error?.code == .cancelled)
            }
        }
    }

    @Test func openingAMissingFIFOFails() async throws {
        let error = await #expect(throws: TygerIOError.self) {
            try await NamedPipe.openForReading("/nonexistent/dir/fifo")
        }
        #expect(error?.code == .notFound)
    }
}

@Suite struct ThreadAndCounterTests {
    @Test func dedicatedThreadReturnsAndThrows() async throws {
        struct Boom: Error {}
        #expect(try await DedicatedThread.run { 6 * 7 } == 42)
        await #expect(throws: Boom.self) { try await DedicatedThread.run { () throws -> Int in throw Boom() } }
    }

    @Test func lockedCounterIsExactUnderContention() async throws {
        let counter = LockedCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    if t % 2 == 0 {
                        try await onThread { for _ in 0..<10_000 { counter.add(1) } }
                    } else {
                        for _ in 0..<10_000 { counter.add(2) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(counter.value == 60_000)
        #expect(counter.add(-60_000) == 0)
    }
}
