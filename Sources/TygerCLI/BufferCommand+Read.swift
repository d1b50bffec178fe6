import ArgumentParser
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO

extension BufferCommand {
    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a buffer to stdout (or a file).",
            discussion: """
                TARGET is an access URL (file://PATH for a local buffer) or a file holding one. A buffer still being \
                written is followed until its writer finishes; a failed or abandoned buffer ends with an error.

                --offset N starts at byte N of the buffer (the blobs before it are passed over by their metadata, \
                their hash chain still checked); -o FILE --resume continues an interrupted read into FILE from its \
                size. Ephemeral buffers cannot be read from an offset.
                """
        )

        @Argument(help: "The buffer's access URL, or a file holding it.")
        var target: String

        @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
        var output: String?

        @Option(help: "Start at this byte of the buffer (e.g. 1048576, 512M).")
        var offset: String?

        @Flag(help: "With -o FILE: continue an interrupted read, appending to FILE from its size.")
        var resume = false

        @Option(name: [.customShort("p"), .long], help: "Concurrent blob downloads.")
        var dop: Int = 32

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
            if let offset { _ = try parseSize(offset, option: "--offset") }
            if resume, output == nil { throw ValidationError("--resume needs -o FILE: the file to continue") }
            if resume, offset != nil { throw ValidationError("--resume and --offset cannot be used together") }
        }

        func run() async throws {
            var options = ReadOptions()
            options.dop = dop
            if let offset { options.offset = try parseSize(offset, option: "--offset") }
            let fd: Int32
            if let path = output {
                fd = resume ? try await openForAppending(path) : try await openPath(path, forWriting: true)
            } else {
                fd = 1
            }
            defer { if output != nil { FileDescriptorOps.close(fd) } }
            if resume { options.offset = FileDescriptorOps.size(fd) ?? 0 }
            let sink: any ByteSink =
                switch ioMode {
                case .syscalls: DescriptorSink(fd: fd, mode: .vmsplice)
                case .copy: DescriptorSink(fd: fd, mode: .write)
                case .dispatch: DispatchIOSink(fd: fd)
                }
            let counter = LockedCounter()
            let reporter = ProgressReporter(operation: "buffer read", counter: counter)
            let (target, accessTTL, fastPath, frozen) = (target, accessTTL, transportMode != .http, options)
            let pacing = BufferLocation.Pacing(timeout: try parseRequestTimeout(requestTimeout), inFlight: dop)
            let summary = try await BufferLocation.$pacing.withValue(pacing) {
                try await withSignalCancellation {
                    try await BufferLocation.withResolved(
                        target,
                        write: false,
                        accessTTL: accessTTL,
                        allowFastPath: fastPath
                    ) { resolved in
                        if frozen.offset > 0, resolved.isEphemeral {
                            throw CommandFailure(
                                "an ephemeral buffer cannot be read from an offset: its bytes are not stored"
                            )
                        }
                        return try await withThrowingTaskGroup(of: TransferSummary?.self) { group in
                            group.addTask {
                                await reporter.run()
                                return nil
                            }
                            let result = try await resolved.read(to: fd, sink: sink, options: frozen, counter: counter)
                            group.cancelAll()
                            return result
                        }
                    }
                }
            }
            reporter.summary(summary, extra: frozen.offset > 0 ? [("fromOffset", String(frozen.offset))] : [])
        }
    }
}
