import Testing
import TygerCore
import TygerTestSupport

@Suite struct BlobPathTests {
    /// Every row of the table in tyger-inventory.md §3.2 (from upstream's `container_test.go`).
    static let vectors: [(Int64, String)] = [
        (0x0, "00/000"),
        (0x5, "00/005"),
        (0xFFF, "00/FFF"),
        (0x1000, "01/000"),
        (0x1FFF, "01/FFF"),
        (0x2000, "02/00/000"),
        (0x2010, "02/00/010"),
        (0x3FFF, "02/01/FFF"),
        (0x4000, "03/00/000"),
        (0x5321, "03/01/321"),
        (0x7FFF, "03/03/FFF"),
        (0x8000, "04/00/000"),
        (0xFFFF, "04/07/FFF"),
        (0x1F_FFFF, "09/FF/FFF"),
        (0x20_0000, "0A/00/00/000"),
        (0xFF_FFFF, "0C/07/FF/FFF"),
        (0x1010_2345, "11/01/02/345"),
        (0x1FFF_FFFF, "11/FF/FF/FFF"),
        (0x2000_0000, "12/00/00/00/000"),
        (1 << 40, "1D/00/00/00/00/000"),
    ]

    @Test(arguments: vectors)
    func upstreamVector(number: Int64, path: String) {
        #expect(BlobPath.name(for: number) == path)
    }

    @Test(arguments: vectors)
    func numbersComeBackFromNames(number: Int64, path: String) {
        #expect(BlobPath.number(of: path) == number)
    }

    @Test func numbersRoundTripAcrossRootBoundaries() {
        for root in 0..<40 {
            let base: Int64 = root == 0 ? 0 : 1 << (root + 11)
            for number in [base, base + 1, base + 0xFFF, base + 0x1000, max(0, 2 * base - 1)] {
                #expect(BlobPath.number(of: BlobPath.name(for: number)) == number)
            }
        }
    }

    @Test(arguments: [
        "", "00", "00/0000", "00/fff", "02/000", "01/00/000", "02/02/000", "xx/000", "00/000/", ":writer",
    ])
    func otherNamesAreNoBlobNumber(name: String) {
        #expect(BlobPath.number(of: name) == nil)
    }

    @Test func decimalRowsOfTheTable() {
        // The table's decimal column, checked separately so a hex typo above cannot hide.
        #expect(BlobPath.name(for: 4095) == "00/FFF")
        #expect(BlobPath.name(for: 8192) == "02/00/000")
        #expect(BlobPath.name(for: 21281) == "03/01/321")
        #expect(BlobPath.name(for: 2_097_152) == "0A/00/00/000")
    }

    @Test func lexicalOrderIsNumericOrderForRandomPairs() {
        var rng = SeededGenerator(seed: 0xB10B)
        var failures: [String] = []
        for i in 0..<20_000 {
            // Mix magnitudes so pairs cross root and sub-folder boundaries, not just the file part.
            let bitsA = Int64(rng.next() % 50) + 1
            let bitsB = i % 3 == 0 ? bitsA : Int64(rng.next() % 50) + 1
            let a = Int64(rng.next() % UInt64(1 << bitsA))
            let b = Int64(rng.next() % UInt64(1 << bitsB))
            let pa = BlobPath.name(for: a)
            let pb = BlobPath.name(for: b)
            if (pa < pb) != (a < b) || (pa == pb) != (a == b) { failures.append("\(a) -> \(pa), \(b) -> \(pb)") }
        }
        // One expectation over the whole run keeps the property test cheap.
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test func consecutiveNumbersAreStrictlyIncreasingAcrossBoundaries() {
        for boundary in stride(from: 12, through: 62, by: 1) {
            let n = Int64(1) << Int64(boundary)
            for k in (n - 2)...(n + 1) where !(BlobPath.name(for: k) < BlobPath.name(for: k + 1)) {
                Issue.record("\(BlobPath.name(for: k)) is not below \(BlobPath.name(for: k + 1))")
            }
        }
    }

    @Test func namesAreUniqueAndDirectoriesStaySmall() {
        // The first 40 000 names: all distinct, and no directory holds more than 4096 entries.
        var seen = Set<String>()
        var entries: [String: Set<String>] = [:]
        for n in Int64(0)..<40_000 {
            let path = BlobPath.name(for: n)
            if !seen.insert(path).inserted { Issue.record("duplicate path \(path) for \(n)") }
            let parts = path.split(separator: "/")
            for depth in 0..<parts.count {
                let dir = parts[0..<depth].joined(separator: "/")
                entries[dir, default: []].insert(String(parts[depth]))
            }
        }
        #expect(entries.values.allSatisfy { $0.count <= 4096 })
    }

    @Test func largestNumber() {
        // m = 2^51 - 1: root 51 (0x33), bit 50 cleared, 7 sub-folder bytes 03 FF FF FF FF FF FF.
        let path = BlobPath.name(for: Int64.max)
        #expect(path == "33/03/FF/FF/FF/FF/FF/FF/FFF")
        #expect(BlobPath.name(for: Int64.max - 1) < path)
    }
}
