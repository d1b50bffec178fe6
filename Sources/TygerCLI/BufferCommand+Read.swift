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
                """
        )

        @Argument(help: "The buffer's access URL, or a file holding it.")
        var target: String

        @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
        var output: String?

        @Option(name: [.customShort("p"), .long], help: "Concurrent blob downloads.")
        var dop: Int = 32

        @Option(name: .customLong("io"), help: .hidden)
        var ioMode: IOMode = .syscalls

        @Option(name: .customLong("access-ttl"), help: .hidden)
        var accessTTL: String?

        @Option(name: .customLong("transport"), help: .hidden)
        var transportMode: TransportMode = .auto

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try validateDop(dop, option: "--dop")
        }

        func run() async throws {
            var options = ReadOptions()
            options.dop = dop
            let fd: Int32
            if let path = output { fd = try await openPath(path, forWriting: true) } else { fd = 1 }
            defer { if output != nil { FileDescriptorOps.close(fd) } }
            let sink: any ByteSink =
                switch ioMode {
                case .syscalls: DescriptorSink(fd: fd, mode: .vmsplice)
                case .copy: DescriptorSink(fd: fd, mode: .write)
                case .dispatch: DispatchIOSink(fd: fd)
                }
            let counter = LockedCounter()
            let reporter = ProgressReporter(operation: "buffer read", counter: counter)
            let (target, accessTTL, fastPath, frozen) = (target, accessTTL, transportMode != .http, options)
            let summary = try await withSignalCancellation {
                try await BufferLocation.withResolved(
                    target,
                    write: false,
                    accessTTL: accessTTL,
                    allowFastPath: fastPath
                ) { resolved in
                    try await withThrowingTaskGroup(of: TransferSummary?.self) { group in
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
            reporter.summary(summary)
        }
    }
}
