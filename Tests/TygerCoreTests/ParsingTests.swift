import Testing
import TygerCore

@Suite struct ByteSizeTests {
    static let valid: [(String, Int64)] = [
        ("0", 0), ("123", 123), ("1K", 1024), ("1k", 1024), ("1KB", 1024), ("1KiB", 1024), ("1.5K", 1536),
        ("512K", 512 << 10), ("4M", 4 << 20), ("4MiB", 4 << 20), ("4MB", 4 << 20), ("10G", 10 << 30),
        ("2T", 2 << 40), ("1P", 1 << 50), (" 64K ", 64 << 10), ("100B", 100), ("0.5M", 512 << 10),
    ]

    @Test(arguments: valid)
    func parsesValidSizes(text: String, bytes: Int64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["12Q", "", "K", "-1", "1.5", "abc", "1 K K", "1e3", "nan", "9999999P", "4 MiBs", "0x10"])
    func rejectsInvalidSizes(text: String) {
        #expect {
            try ByteSize.parse(text)
        } throws: { error in
            (error as? TygerCoreError)?.code == .invalidArgument
                && (error as? TygerCoreError)?.message.contains("invalid size") == true
        }
    }

    @Test func unknownUnitIsNamedInTheMessage() throws {
        let error = try #require(throws: TygerCoreError.self) { try ByteSize.parse("12Q") }
        #expect(error.message.contains("'Q'"))
    }

    @Test(arguments: [
        (Int64(0), "0B"), (1023, "1023B"), (1024, "1.00KiB"), (1536, "1.50KiB"), (4 << 20, "4.00MiB"),
        (Int64(15) << 30, "15.0GiB"),
    ])
    func formats(bytes: Int64, text: String) {
        #expect(ByteSize.format(bytes) == text)
    }

    @Test func formatFixed() {
        #expect(ByteSize.formatFixed(1.23456, digits: 3) == "1.235")
        #expect(ByteSize.formatFixed(2, digits: 2) == "2.00")
        #expect(ByteSize.formatFixed(0.05, digits: 1) == "0.1")
        #expect(ByteSize.formatFixed(7.9, digits: 0) == "8")
    }
}

@Suite struct DurationParserTests {
    static let valid: [(String, Duration)] = [
        ("1s", .seconds(1)), ("500ms", .milliseconds(500)), ("250ms", .milliseconds(250)), ("1m30s", .seconds(90)),
        ("2h45m", .seconds(2 * 3600 + 45 * 60)), ("1.5h", .seconds(5400)), ("0", .zero), ("0s", .zero),
        ("2", .seconds(2)),
        ("0.25", .milliseconds(250)), ("10us", .microseconds(10)), ("10µs", .microseconds(10)),
        ("7ns", .nanoseconds(7)),
    ]

    @Test(arguments: valid)
    func parsesValidDurations(text: String, duration: Duration) throws {
        #expect(try DurationParser.parse(text) == duration)
    }

    /// Huge numbers are refused with the limit, never converted past Int64 (which trapped: a CLI crash).
    @Test(arguments: ["1e30", "1e10", "9000000000", "1000000000000s", "99999999999h", "9000000000s"])
    func rejectsDurationsPastTheLimit(text: String) {
        #expect {
            try DurationParser.parse(text)
        } throws: { error in
            (error as? TygerCoreError)?.message.contains("longer than the limit of 9000000000 seconds") == true
        }
    }

    @Test(arguments: ["5x", "", "s", "1d", "-1s", "-1", "1s2", "ms", "1.2.3s", "inf"])
    func rejectsInvalidDurations(text: String) {
        #expect {
            try DurationParser.parse(text)
        } throws: { error in
            (error as? TygerCoreError)?.code == .invalidArgument
                && (error as? TygerCoreError)?.message.contains("invalid duration") == true
        }
    }
}
