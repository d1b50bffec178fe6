import ArgumentParser
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO

extension BufferCommand {
    struct Write: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write stdin (or a file) into a buffer.",
            discussion: """
                TARGET is an access URL (file://PATH for a local buffer, created if PATH does not exist) or a file \
                holding one. Buffers are write-once: writing to a buffer that already holds data fails.

                An interrupted write (a signal, a lost connection, a killed process) leaves the buffer abandoned: \
                --resume continues it after its last stored blob, with the same input from its first byte. A file \
                input (-i FILE, or stdin redirected from a file) is moved past the stored bytes; from a pipe, the \
                stored bytes are read again and checked against the buffer before the write goes on. The buffer's \
                format, compression and block size are kept.
                """
        )

        @Argument(help: "The buffer's access URL, or a file holding it.")
        var target: String

        @Option(name: .shortAndLong, help: "Read from this file instead of stdin.")
        var input: String?

        @Option(
            name: [.customShort("p"), .long],
            help: "Concurrent blob uploads (default: 16)."
        )
        var dop: Int?

        @Option(
            name: .shortAndLong,
            help: "Block (blob) size, e.g. 4M, 512K (default: 4M; when resuming, the stored blobs')."
        )
        var blockSize: String?

        @Flag(
            help: "Continue the buffer's interrupted write after its last stored blob (the same input, from its start)."
        )
        var resume = false

        @Option(
            name: .shortAndLong,
            help: "Flush a partial block after this long (e.g. 1s, 250ms; 0 disables). Off for regular-file input."
        )
        var flushInterval: String = "1s"

        @Option(help: "Compression of the native format: none, fast (isa-l deflate) or best (zlib level 9).")
        var compress: CompressOption = .none

        @Option(help: "Buffer format: native (CRC32C, optional compression) or 0.3.0 (upstream Tyger, MD5).")
        var format: String = "native"

        @Option(
            help: ArgumentHelp(
                "Timeout of each blob request: adaptive (follows the measured rate) or a fixed duration (e.g. 100s).",
                valueName: "adaptive|D"
            )
        )
        var requestTimeout: String?

        @Option(name: .customLong("io"), help: .hidden)
        var ioMode: IOMode = .syscalls

        @Option(name: .customLong("access-ttl"), help: .hidden)
        var accessTTL: String?

        @Option(name: .customLong("transport"), help: .hidden)
        var transportMode: TransportMode = .auto

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try validateDop(dop, option: "--dop")
            _ = try parseRequestTimeout(requestTimeout)
            if let blockSize {
                let size = try parseSize(blockSize, option: "--block-size")
                guard size >= 1024 && size <= 256 << 20 else {
                    throw ValidationError("--block-size must be between 1K and 256M, got '\(blockSize)'")
                }
            }
            do { _ = try DurationParser.parse(flushInterval) } catch let e as TygerCoreError {
                throw ValidationError("--flush-interval: \(e.message)")
            }
            guard let f = BufferFormat(name: format) else {
                throw ValidationError("unknown --format '\(format)': use native or 0.3.0")
            }
            if f == .upstream && compress != .none {
                throw ValidationError("--compress needs the native format; the 0.3.0 format stores blobs raw")
            }
        }

        func run() async throws {
            var options = WriteOptions()
            if let dop { options.dop = dop }
            if let blockSize { options.blockSize = Int(try parseSize(blockSize, option: "--block-size")) }
            let interval = try DurationParser.parse(flushInterval)
            options.flushInterval = interval > .zero ? interval : nil
            options.format = BufferFormat(name: format)!  // checked in validate()
            options.compression = compress.level
            let fd: Int32
            if let path = input { fd = try await openPath(path, forWriting: false) } else { fd = 0 }
            defer { if input != nil { FileDescriptorOps.close(fd) } }
            let source: any ByteSource = ioMode == .dispatch ? DispatchIOSource(fd: fd) : DescriptorSource(fd: fd)
            let counter = LockedCounter()
            let reporter = ProgressReporter(operation: "buffer write", counter: counter)
            let (target, accessTTL, fastPath, configured, dop, resume, blockSizeGiven) = (
                // A resumed write takes the server's lease (an HTTP writer's may be in its records): never the
                // embedded server's folder directly.
                target, accessTTL, transportMode != .http && !resume, options, dop, resume, blockSize != nil
            )
            let resumedAt = LockedCounter()
            let pacing = BufferLocation.Pacing(
                timeout: try parseRequestTimeout(requestTimeout),
                inFlight: dop ?? defaultWriteDop
            )
            let summary = try await BufferLocation.$pacing.withValue(pacing) {
                try await withSignalCancellation {
                    try await BufferLocation.withResolved(
                        target,
                        write: true,
                        accessTTL: accessTTL,
                        allowFastPath: fastPath
                    ) { resolved in
                        var options = configured
                        options.createContainer = resolved.createsContainer
                        if dop == nil { options.dop = defaultWriteDop }
                        let frozen = options
                        if resume, resolved.isEphemeral {
                            throw CommandFailure(
                                "an ephemeral buffer cannot be resumed: its bytes go straight to the run and are not stored"
                            )
                        }
                        return try await withThrowingTaskGroup(of: TransferSummary?.self) { group in
                            group.addTask {
                                await reporter.run()
                                return nil
                            }
                            let result: TransferSummary
                            if resume {
                                let resumed = try await BufferWriter.resume(
                                    from: source,
                                    to: resolved.store,
                                    options: frozen,
                                    input: resumedInput(fd),
                                    blockSizeGiven: blockSizeGiven,
                                    bytesStored: counter
                                )
                                resumedAt.add(resumed.resumedAt)
                                result = resumed.transfer
                            } else {
                                result = try await resolved.write(
                                    from: fd,
                                    source: source,
                                    options: frozen,
                                    counter: counter
                                )
                            }
                            group.cancelAll()
                            return result
                        }
                    }
                }
            }
            var extra: [(String, String)] = []
            if resume { extra.append(("resumedAt", ByteSize.format(resumedAt.value))) }
            if compress != .none, summary.bytes > 0 {
                extra += [
                    ("storedData", ByteSize.format(summary.storedBytes)),
                    ("ratio", ByteSize.formatFixed(Double(summary.storedBytes) / Double(summary.bytes), digits: 3)),
                ]
            }
            reporter.summary(summary, extra: extra)
        }
    }
}
