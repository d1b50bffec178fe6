import Foundation
import Synchronization
import Testing
import TygerCore
import TygerStorage
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileBlobStoreTests {
    @Test func blobFileLayoutIsBytesThenJSONTrailerLengthAndMagic() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            try await store.createContainer()
            let bytes = Payload.random(count: 5000, seed: 1)
            var metadata = BlobMetadata(contentMD5: "CffgLxKQviEdpweiZvFTsw==")
            metadata.hashChain = "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c="
            try await put(store, "02/00/010", bytes, metadata)

            let raw = try TestFiles.read(dir + "/02/00/010")
            #expect(Array(raw.suffix(8)) == Array("TYGBLOB1".utf8))
            #expect(mismatch(raw.prefix(5000), bytes) == nil)
            let parts = try FileBlobFile.read(dir + "/02/00/010")
            #expect(mismatch(parts.data, bytes) == nil)
            #expect(raw.count == 5000 + parts.metadataJSON.count + 4 + 8)
            #expect(
                try parts.metadata() == [
                    "content-md5": "CffgLxKQviEdpweiZvFTsw==",
                    "meta:cumulative_hash_chain": "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=",
                ]
            )
        }
    }

    @Test func blobsWrittenByHandAreRead() async throws {
        // The layout is the contract: a file assembled independently reads back through the store.
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            try await store.createContainer()
            let bytes = Payload.random(count: 777, seed: 2)
            let parts = try FileBlobFile.Parts(data: bytes, metadataJSON: []).with(metadata: [
                "content-md5": "x", "meta:crc32c": "0badf00d", "ignored": "y",
            ])
            try FileBlobFile.write(parts, to: dir + "/.bufferstart")
            let blob = try #require(try await store.get(".bufferstart"))
            #expect(Array(blob.bytes) == bytes)
            #expect(blob.metadata == BlobMetadata(contentMD5: "x", properties: ["crc32c": "0badf00d"]))
        }
    }

    @Test(arguments: [100, 256 * 1024, 256 * 1024 + 1, 3 << 20])
    func largeBlobsAreMappedSmallOnesCopied(count: Int) async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            try await store.createContainer()
            let bytes = Payload.random(count: count, seed: UInt64(count))
            try await put(store, "00/000", bytes)
            let blob = try #require(try await store.get("00/000"))
            #expect(blob.isMapped == (count > 256 * 1024))
            #expect(mismatch(Array(blob.bytes), bytes) == nil)
            if blob.isMapped {
                #expect(Int(bitPattern: blob.bytes.baseAddress!) % 4096 == 0)
            }
        }
    }

    /// A blob in page-aligned memory (the ring's blocks are) has its page-aligned part written with direct I/O,
    /// past the page cache, and its tail through it; it reads back whole. On tmpfs (no direct I/O) the same put goes
    /// through the page cache.
    @Test(arguments: ["/tmp", "/dev/shm"])
    func pageAlignedBlobsGoPastThePageCacheWhereTheFileSystemAllows(parent: String) async throws {
        let tmpfs = try Self.fileSystemType(of: parent) == "tmpfs"
        let base = try makeTemporaryDirectory(prefix: "tyger-direct", under: parent)
        defer { removeTree(base) }
        let directory = base + "/buffer"
        let store = FileBlobStore(directory: directory, directWrites: true)
        try await store.createContainer()
        let count = (3 << 20) + 1234
        let bytes = Payload.random(count: count, seed: 7)
        var raw: UnsafeMutableRawPointer?
        try #require(posix_memalign(&raw, 4096, count) == 0)
        defer { free(raw) }
        let memory = UnsafeMutableRawBufferPointer(start: raw, count: count)
        memory.copyBytes(from: bytes)
        try await store.put("00/000", bytes: UnsafeRawBufferPointer(memory), metadata: BlobMetadata(contentMD5: "x"))

        // Which of the file's first 768 pages (the direct part) the page cache holds, before anything reads them.
        let cached = try Self.cachedPages(directory + "/00/000", first: 768)
        #expect(tmpfs ? cached == 768 : cached == 0, "\(cached) of 768 pages in the page cache")

        let blob = try #require(try await store.get("00/000"))
        #expect(mismatch(Array(blob.bytes), bytes) == nil)
        #expect(blob.metadata.contentMD5 == "x")
    }

    /// How many of the first `pages` pages of the file at `path` the page cache holds (`mincore`).
    static func cachedPages(_ path: String, first pages: Int) throws -> Int {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let length = pages * 4096
        let map = try #require(mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0))
        defer { munmap(map, length) }
        var resident = [UInt8](repeating: 0, count: pages)
        try #require(mincore(map, length, &resident) == 0)
        return resident.filter { $0 & 1 == 1 }.count
    }

    /// The type of the file system `path` is on (`/proc/mounts`, longest mount point that contains it).
    static func fileSystemType(of path: String) throws -> String {
        let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        var best = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { continue }
            let point = String(fields[1])
            let contains = path == point || path.hasPrefix(point == "/" ? "/" : point + "/")
            if contains, point.count >= best.0.count { best = (point, String(fields[2])) }
        }
        return best.1
    }

    /// A name that is both a blob and a folder of blobs cannot be stored in files: a clear `.invalidName` (400 on the
    /// data plane), and a folder reads as no blob. Both were I/O errors (500) before (found by `FuzzRoutesTests`).
    @Test func aBlobNameThatIsAlsoAFolderIsAnInvalidNameNotAnIOError() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            try await store.createContainer()
            try await put(store, "a", [1, 2, 3], BlobMetadata())
            try await put(store, "b/000", [4], BlobMetadata())
            for name in ["a/000", "a/x/y"] {
                await #expect(throws: BlobStoreError.self) { try await put(store, name, [5], BlobMetadata()) }
                do { try await put(store, name, [5], BlobMetadata()) } catch let error as BlobStoreError {
                    #expect(error.code == .invalidName, "\(name): \(error)")
                }
                #expect(throws: BlobStoreError.self) { _ = try store.beginUpload(name) }
            }
            #expect(try await store.get("b") == nil)
            #expect(try await store.head("b") == nil)
            #expect(try await store.get("a/000") == nil)
            #expect(TestFiles.regularFiles(under: dir).filter { $0.contains(".tmp-") }.isEmpty)
        }
    }

    @Test func noTemporaryFilesAreLeftBehind() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir + "/b/")
            #expect(store.directory == dir + "/b")
            #expect(store.location == "file://\(dir)/b")
            try await store.createContainer()
            var names: [String] = []
            for n in Int64(0)..<20 {
                names.append(BlobPath.name(for: n * 1000))
                try await put(store, names.last!, Payload.random(count: 100, seed: UInt64(n)))
            }
            _ = await storeError { try await put(store, names[0], [1]) }  // a failed put cleans up too
            #expect(TestFiles.regularFiles(under: dir + "/b") == names.sorted())
        }
    }

    @Test(arguments: ["truncated", "badMagic", "badJSON", "hugeLength", "tiny", "empty"])
    func damagedTrailersAreCorrupt(damage: String) async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            try await store.createContainer()
            try await put(store, "00/000", Payload.random(count: 1000, seed: 3), BlobMetadata(contentMD5: "m"))
            let path = dir + "/00/000"
            var raw = try TestFiles.read(path)
            switch damage {
            case "truncated": raw.removeLast(3)
            case "badMagic": raw[raw.count - 1] = UInt8(ascii: "2")
            case "badJSON": raw[1000] = UInt8(ascii: "[")  // first byte of the JSON
            case "hugeLength": raw[raw.count - 9] = 0x7F  // top byte of the length
            case "tiny": raw = Array(raw.suffix(8))
            default: raw = []
            }
            try TestFiles.write(raw, to: path)
            #expect(await storeError { _ = try await store.get("00/000") } == .corrupt)
            #expect(await storeError { _ = try await store.head("00/000") } == .corrupt)
        }
    }

    @Test func aNonDirectoryContainerDoesNotExist() async throws {
        try await withTemporaryDirectory { dir in
            try TestFiles.write([1], to: dir + "/file")
            let store = FileBlobStore(directory: dir + "/file")
            #expect(try await !store.containerExists())
        }
    }

    @Test func droppingTheLeaseObjectReleasesIt() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            do {
                let lease = try await store.acquireWriterLease()
                #expect(try await store.writerState() == .active)
                _ = lease
            }
            #expect(await writerGone(store))
            let again = try await store.acquireWriterLease()
            await again.release()
        }
    }

    @Test func leaseIsSharedBetweenStoreInstancesOfOneDirectory() async throws {
        try await withTemporaryDirectory { dir in
            let a = FileBlobStore(directory: dir)
            let b = FileBlobStore(directory: dir)
            let lease = try await a.acquireWriterLease()
            #expect(await storeError { _ = try await b.acquireWriterLease() } == .leaseHeld)
            #expect(try await b.writerState() == .active)
            await lease.release()
            #expect(await writerGone(b))
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func aLeaseHeldByAnotherProcessIsActiveUntilItDies() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir)
            // `flock(1)` takes the same kind of lock on the same file, as another writer process would.
            try TestFiles.write([], to: dir + "/.writer.lock")
            // `-o`: the lock is held by flock itself, not inherited by the command it runs.
            // The holder outlives any slow start (it is killed below), so the lease is still held when checked.
            let holder = try ChildProcess("/usr/bin/flock", ["-x", "-o", dir + "/.writer.lock", "sleep", "300"])
            #expect(await eventually(timeout: .seconds(30)) { (try? await store.writerState()) == .active })
            #expect(await storeError { _ = try await store.acquireWriterLease() } == .leaseHeld)
            holder.signal(SIGKILL)
            _ = try await holder.wait(timeout: .seconds(10))
            #expect(await eventually(timeout: .seconds(30)) { (try? await store.writerState()) == .gone })
            let lease = try await store.acquireWriterLease()
            await lease.release()
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func aStartingWriterIsNeverSeenAsGone() async throws {
        // A reader that finds no `.bufferstart` asks whether the writer is alive; a writer in the middle of taking its
        // lease must read as starting or active, never as gone (the reader would report the buffer abandoned).
        try await withMemoryDirectory { base in
            var gone = 0
            for round in 0..<150 {
                let dir = base + "/\(round)"
                try TestFiles.makeDirectory(dir)
                let writer = FileBlobStore(directory: dir)
                let reader = FileBlobStore(directory: dir)
                let stop = Locked(false)
                let probes = Locked(0)
                // The probe spins on a thread of its own: a loop that never suspends would hold a thread of the
                // cooperative pool (two on this machine) and starve every other test of the process.
                let probe = spawnThread { () -> Int in
                    var seenGone = 0
                    while !stop.value {
                        if reader.currentWriterState() == .gone { seenGone += 1 }
                        probes.withLock { $0 += 1 }
                    }
                    return seenGone
                }
                // Take the lease while the probe is running.
                while probes.value == 0 { try await Task.sleep(for: .milliseconds(1)) }
                let lease = try await writer.acquireWriterLease()
                stop.withLock { $0 = true }
                gone += try await probe.value
                await lease.release()
            }
            #expect(gone == 0, "a writer taking its lease was seen as gone \(gone) times")
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func probingTheWriterStateNeverMakesAWriterFail() async throws {
        // Readers probe the lease (`writerState`) while a writer may be taking it: the probe must not make the
        // writer's `acquireWriterLease` fail with "another writer is writing this buffer".
        try await withMemoryDirectory { dir in
            let writer = FileBlobStore(directory: dir)
            let reader = FileBlobStore(directory: dir)
            let lease = try await writer.acquireWriterLease()
            await lease.release()
            let running = Locked(true)
            let probes = Locked(0)
            // On a thread of its own, so the probe races the writer for real without holding a cooperative thread.
            let probing = spawnThread {
                while running.value {
                    _ = reader.currentWriterState()
                    probes.withLock { $0 += 1 }
                }
            }
            #expect(await eventually(timeout: .seconds(60)) { probes.value > 0 })
            var spurious = 0
            for _ in 0..<600 {
                do {
                    let lease = try await writer.acquireWriterLease()
                    await lease.release()
                } catch let error as BlobStoreError where error.code == .leaseHeld {
                    spurious += 1
                }
            }
            running.withLock { $0 = false }
            try await probing.value
            #expect(spurious == 0, "\(spurious) of 600 lease acquisitions failed because a reader was probing")
        }
    }
}

extension FileBlobStoreTests {
    /// A process killed in the middle of a blob leaves `NAME.tmp-PID-INSTANCE-N`; the server removes those of dead
    /// processes when it starts (found by the kill -9 trials: a killed server's upload stayed forever), and keeps
    /// live ones.
    @Test func abandonedTemporaryFilesOfDeadProcessesAreRemoved() async throws {
        try await withTemporaryDirectory { dir in
            let dead = deadPID()
            let live = getppid()  // the process that started the tests: a live writer of another process
            try TestFiles.makeDirectory(dir + "/b1/00")
            try TestFiles.write([1], to: dir + "/b1/00/001.tmp-\(dead)-0123456789abcdef-1")
            try TestFiles.write([1], to: dir + "/b1/.bufferstart.tmp-\(dead)-7")  // named before instance IDs
            try TestFiles.write([1], to: dir + "/b1/00/002.tmp-\(live)-0123456789abcdef-1")
            try TestFiles.write([1], to: dir + "/b1/00/000")
            #expect(FileBlobStore.removeStaleTemporaryFiles(under: dir).count == 2)
            #expect(TestFiles.regularFiles(under: dir) == ["b1/00/000", "b1/00/002.tmp-\(live)-0123456789abcdef-1"])
        }
    }

    /// Without a server, a killed `file://` writer's temporary files are removed by the next reader or writer of
    /// the buffer (found by the kill -9 trials: a writer killed inside its `.bufferstart` put), unless a writer holds
    /// the lease or the buffer ended.
    @Test func theNextReaderOrWriterRemovesWhatADeadWriterLeft() async throws {
        try await withTemporaryDirectory { dir in
            let dead = deadPID()
            try TestFiles.makeDirectory(dir + "/b1/00")
            try TestFiles.write([1], to: dir + "/b1/.bufferstart.tmp-\(dead)-0123456789abcdef-2")
            try TestFiles.write([1], to: dir + "/b1/00/001.tmp-\(dead)-0123456789abcdef-3")
            let lease = try await FileBlobStore(directory: dir + "/b1").acquireWriterLease()
            // While a writer holds the lease, its files are left alone.
            #expect(try await FileBlobStore(directory: dir + "/b1").containerExists())
            #expect(TestFiles.regularFiles(under: dir).filter { $0.contains(".tmp-") }.count == 2)
            await lease.release()
            #expect(try await FileBlobStore(directory: dir + "/b1").containerExists())
            #expect(TestFiles.regularFiles(under: dir).filter { $0.contains(".tmp-") }.isEmpty)
            // A buffer that ended keeps whatever it holds (nothing of a writer that finished is pending).
            try TestFiles.makeDirectory(dir + "/b2")
            try TestFiles.write([1], to: dir + "/b2/00.tmp-\(dead)-0123456789abcdef-1")
            try TestFiles.write([1], to: dir + "/b2/.bufferend")
            #expect(try await FileBlobStore(directory: dir + "/b2").containerExists())
            #expect(TestFiles.exists(dir + "/b2/00.tmp-\(dead)-0123456789abcdef-1"))
        }
    }

    /// A server restarted in a container is PID 1 again: the files of its predecessor carry its PID. They are told
    /// apart by the random instance ID in the name, and removed at start, unless a writer holds them open (a
    /// writer in another PID namespace may have any PID); this process's own stay.
    @Test func temporaryFilesOfAnEarlierProcessWithTheSamePIDAreRemoved() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir + "/b1")
            try await store.createContainer()
            let upload = try store.beginUpload("00/000")  // this process's, at work
            defer { upload.abort() }
            let own = try #require(TestFiles.regularFiles(under: dir).first)
            let other = own.contains("-0123456789abcdef-") ? "fedcba9876543210" : "0123456789abcdef"
            let pid = getpid()
            let earlier = ["b1/00/001.tmp-\(pid)-\(other)-1", "b1/00/002.tmp-\(pid)-1", "b1/.bufferstart.tmp-\(pid)-3"]
            for name in earlier { try TestFiles.write([1], to: dir + "/" + name) }
            // Open and locked by a writer that is alive (elsewhere, with this PID): it stays.
            let held = "b1/00/003.tmp-\(pid)-\(other)-1"
            try TestFiles.write([1], to: dir + "/" + held)
            let fd = open(dir + "/" + held, O_RDONLY)
            defer { close(fd) }
            #expect(flock(fd, LOCK_SH) == 0)

            let removed = FileBlobStore.removeStaleTemporaryFiles(under: dir)
            #expect(Set(removed) == Set(earlier.map { dir + "/" + $0 }))
            #expect(Set(TestFiles.regularFiles(under: dir)) == [own, held])
        }
    }

    /// Staged blocks of an earlier process with the same PID are not this process's: not seen, not assembled,
    /// removed at start.
    @Test func stagedBlocksOfAnEarlierProcessWithTheSamePIDAreIgnored() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir + "/b1")
            try await store.createContainer()
            let mine = try store.beginBlockUpload("00/000", blockId: Array("aa".utf8))
            try ([7] as [UInt8]).withUnsafeBytes { try mine.append($0) }
            try mine.commitBlock()
            let own = try #require(TestFiles.regularFiles(under: dir).first)
            let folder = dir + "/" + String(own[..<own.lastIndex(of: "/")!])
            let other = own.contains("-0123456789abcdef-") ? "fedcba9876543210" : "0123456789abcdef"
            let pid = getpid()
            // "bb" and "cc" staged by an earlier server with this PID, before and since instance IDs.
            let earlier = [folder + "/6262.tmp-\(pid)-0", folder + "/6363.tmp-\(pid)-\(other)-0"]
            for path in earlier { try TestFiles.write([1, 2, 3], to: path) }

            #expect(store.stagedBlockLength("00/000", blockId: Array("aa".utf8)) == 1)
            #expect(store.stagedBlockLength("00/000", blockId: Array("bb".utf8)) == nil)
            #expect(store.stagedBlockLength("00/000", blockId: Array("cc".utf8)) == nil)
            let upload = try store.beginUpload("00/000")
            defer { upload.abort() }
            let error = #expect(throws: BlobStoreError.self) {
                try store.appendStagedBlocks(of: "00/000", blockIds: [Array("bb".utf8)], to: upload) { _ in }
            }
            #expect(error?.code == .blockNotFound)

            upload.abort()
            #expect(Set(FileBlobStore.removeStaleTemporaryFiles(under: dir)) == Set(earlier))
            #expect(TestFiles.regularFiles(under: dir) == [own])
        }
    }

    /// Staging a block while the buffer is deleted: the staging folder is made with `mkdirat` under an open
    /// descriptor of the buffer's directory, so a buffer deleted a moment before is never created again. (With
    /// `mkdir` by path, after a check that the buffer exists, the deleted buffer came back holding an empty staging
    /// folder.) A race, run many times with the two sides shifted against each other.
    @Test func stagingABlockNeverCreatesADeletedBufferAgain() async throws {
        try await withTemporaryDirectory { root in
            // All on threads of their own: the rounds spin and never suspend, and on the cooperative pool (two threads
            // on this machine) they would starve every other test of the process.
            let (recreated, refused, unexpected) = try await onThread { () -> ([Int], Int, [String]) in
                var recreated: [Int] = []
                var refused = 0
                var unexpected: [String] = []
                for i in 0..<1000 {
                    let store = FileBlobStore(directory: root + "/b\(i)")
                    try TestFiles.makeDirectory(store.directory)
                    let go = Atomic(false)
                    let deleted = Atomic(0)  // 0: running, 1: deleted, 2: not deleted (a block was staged meanwhile)
                    startThread {
                        while !go.load(ordering: .acquiring) {}
                        Self.spin(i % 7 * 200)
                        let ok = (try? store.removeContainer()) != nil
                        deleted.store(ok ? 1 : 2, ordering: .releasing)
                    }
                    go.store(true, ordering: .releasing)
                    Self.spin(i / 7 % 7 * 200)
                    do {
                        try store.beginBlockUpload("00/000", blockId: [1]).abort()
                    } catch let error as BlobStoreError {
                        if error.code != .containerNotFound { unexpected.append("\(error.code): \(error.message)") }
                        refused += 1
                    }
                    while deleted.load(ordering: .acquiring) == 0 { Self.spin(100) }
                    if deleted.load(ordering: .acquiring) == 1 && TestFiles.exists(store.directory) {
                        recreated.append(i)
                    }
                }
                return (recreated, refused, unexpected)
            }
            #expect(unexpected.isEmpty, "\(unexpected)")
            #expect(recreated.isEmpty, "the buffer was created again after its deletion in \(recreated.count) runs")
            #expect(refused > 0, "no run had the buffer deleted before the staging folder was made")
        }
    }

    /// Busy work that the optimizer keeps.
    private static func spin(_ rounds: Int) {
        var x = 0
        for i in 0..<rounds { x = x &+ i &* 31 }
        withExtendedLifetime(x) {}
    }

    /// A PID that no process has now (a child that has exited and been reaped).
    private func deadPID() -> Int32 {
        var pid: Int32 = 999_999
        while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
        return pid
    }
}
