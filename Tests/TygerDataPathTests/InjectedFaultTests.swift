import Testing
import TygerCore
import TygerDataPath
import TygerStorage
import TygerTestSupport

/// An I/O error injected at each `BlobStore` call in turn (the 1st, the 2nd, … until a transfer makes fewer calls),
/// once (transient) or from then on (a store that stays broken), for the writer and for the reader, in both formats
/// and on both stores. The invariant: a transfer either fails with an error or moves exactly the input; a failed
/// write never leaves a buffer a reader returns as complete; nothing waits longer than the bound.
@Suite(.timeLimit(.minutes(10))) struct InjectedFaultTests {
    static let input = Payload.random(count: 5 * 16384 - 10, seed: 77)
    static let bound = Duration.seconds(20)

    private func options(_ format: BufferFormat) -> WriteOptions {
        testWriteOptions(format: format, blockSize: 16384, dop: 2)
    }

    @Test(arguments: StoreKind.allCases, [false, true])
    func faultInEachWriterCall(kind: StoreKind, persistent: Bool) async throws {
        var trials = 0
        for format in [BufferFormat.native, .upstream] {
            var n = 1
            while true {
                let injected = try await TestStore.with(kind) { t -> Bool in
                    let faulty = FaultInjectingBlobStore(t.store, failAt: n, persistent: persistent)
                    let opts = options(format)
                    let wrote = try await withinTime(Self.bound) {
                        do {
                            _ = try await BufferWriter.write(
                                from: ArraySource(Self.input, maxRead: 50_000),
                                to: faulty,
                                options: opts
                            )
                            return true
                        } catch { return false }
                    }
                    let what = "\(kind) \(format) fault at call \(n) (\(faulty.injected)), persistent \(persistent)"
                    let succeeded = try #require(wrote as Bool?, "\(what): the write did not end within \(Self.bound)")
                    // What a reader of the real store sees afterwards.
                    let started = (try? await t.store.head(BufferBlobNames.start)) ?? nil
                    if succeeded || started != nil {
                        let store = t.store
                        let read = try await withinTime(Self.bound) { () -> [UInt8]? in
                            let sink = MemorySink()
                            do {
                                _ = try await BufferReader.read(from: store, to: sink, options: testReadOptions())
                                return sink.bytes
                            } catch { return nil }
                        }
                        let outcome = try #require(read, "\(what): the reader did not end within \(Self.bound)")
                        if succeeded {
                            #expect(outcome.map { mismatch($0, Self.input) == nil } == true, "\(what): data lost")
                        } else if let bytes = outcome {
                            // The write failed after its end marker (a sync, or `.bufferend` itself): the data read
                            // must be all of it, and a buffer marked failed must not read as complete.
                            #expect(mismatch(bytes, Self.input) == nil, "\(what): partial data read as complete")
                            let end = try await t.store.get(BufferBlobNames.end)
                            let failed = end.map { String(decoding: $0.bytes, as: UTF8.self).contains("failed") }
                            #expect(failed != true, "\(what): a buffer marked failed reads back as complete")
                        }
                    }
                    return !faulty.injected.isEmpty
                }
                trials += 1
                if !injected { break }
                n += 1
            }
        }
        FaultSettings.report(
            "injected writer faults (\(kind), persistent \(persistent)): \(trials) trials, 0 data lost"
        )
    }

    @Test(arguments: StoreKind.allCases, [false, true])
    func faultInEachReaderCall(kind: StoreKind, persistent: Bool) async throws {
        var trials = 0
        for format in [BufferFormat.native, .upstream] {
            try await TestStore.with(kind) { t in
                try await writeBuffer(Self.input, to: t.store, options: options(format))
                var n = 1
                while true {
                    let faulty = FaultInjectingBlobStore(t.store, failAt: n, persistent: persistent)
                    let read = try await withinTime(Self.bound) { () -> [UInt8]? in
                        let sink = MemorySink()
                        do {
                            _ = try await BufferReader.read(from: faulty, to: sink, options: testReadOptions(dop: 4))
                            return sink.bytes
                        } catch { return nil }
                    }
                    let what = "\(kind) \(format) fault at call \(n) (\(faulty.injected)), persistent \(persistent)"
                    let outcome = try #require(read, "\(what): the reader did not end within \(Self.bound)")
                    if let bytes = outcome {
                        #expect(
                            mismatch(bytes, Self.input) == nil,
                            "\(what): a read that succeeded returned other data"
                        )
                    }
                    trials += 1
                    if faulty.injected.isEmpty { break }
                    n += 1
                }
            }
        }
        FaultSettings.report(
            "injected reader faults (\(kind), persistent \(persistent)): \(trials) trials, 0 data lost"
        )
    }
}
