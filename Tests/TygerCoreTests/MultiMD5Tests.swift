import Testing
import TygerCore
import TygerTestSupport

@Suite struct MultiMD5Tests {
    /// Several regions hashed side by side give each region's own MD5, whatever the lengths and the count.
    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 65_536 + 7])
    func multiBufferMD5EqualsOneByOne(length: Int) {
        // Up to 35 messages: two full passes of 16 lanes and a remainder; the last one has another length.
        let messages = (0..<35).map { i in
            Payload.random(count: i == 34 ? length + 3 : length, seed: UInt64(length * 64 + i))
        }
        for count in 1...messages.count {
            let subset = Array(messages.prefix(count))
            let expected = subset.map { Checksums.md5Base64($0) }
            let actual = subset.withUnsafeRegions { Checksums.md5Base64(multi: $0) }
            #expect(actual == expected, "length \(length), \(count) messages")
        }
    }

    @Test func knownVector() {
        let hello = Array("Hello\n".utf8)
        let result = [hello, hello].withUnsafeRegions { Checksums.md5Base64(multi: $0) }
        #expect(result == ["CffgLxKQviEdpweiZvFTsw==", "CffgLxKQviEdpweiZvFTsw=="])
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with a raw region for each array (valid only during the call).
    func withUnsafeRegions<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        func go(_ index: Int, _ acc: [UnsafeRawBufferPointer]) -> R {
            if index == count { return body(acc) }
            return self[index].withUnsafeBytes { go(index + 1, acc + [$0]) }
        }
        return go(0, [])
    }
}
