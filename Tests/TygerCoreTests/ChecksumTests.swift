import Testing
import TygerCore
import TygerTestSupport

@Suite struct ChecksumTests {
    // MARK: Published vectors

    @Test func helloVectorOfTheUpstreamFormat() {
        let hello = Array("Hello\n".utf8)
        let md5 = Checksums.md5Base64(hello)
        #expect(md5 == "CffgLxKQviEdpweiZvFTsw==")
        var chain = HashChain()
        #expect(chain.append(md5) == "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=")
        #expect(chain.value == "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=")
    }

    @Test func md5OfTheBufferStartDocument() {
        #expect(Checksums.md5Base64(Array(#"{"version":"0.3.0"}"#.utf8)) == "jRl6v+tdX5RbfseHVtVXDw==")
        #expect(Checksums.md5Base64(BufferStartMetadata(format: .upstream).encoded()) == "jRl6v+tdX5RbfseHVtVXDw==")
    }

    @Test func md5OfTheEmptyEndMarker() {
        #expect(Checksums.md5Base64([UInt8]()) == "1B2M2Y8AsgTpgAmY7PhCfg==")
    }

    @Test func crc32cCheckValue() {
        #expect(Checksums.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Checksums.crc32cString(Checksums.crc32c(Array("123456789".utf8))) == "e3069283")
        #expect(Checksums.crc32c([UInt8]()) == 0)
    }

    @Test func chainInitialValueIsBase64OfSixteenZeros() {
        #expect(HashChain.initialValue == Reference.chainInitialValue)
        #expect(HashChain().value == "MDAwMDAwMDAwMDAwMDAwMA==")
    }

    @Test func referenceDigestsMatchPublishedVectors() {
        // The test-only implementations are checked against FIPS 180-4 / RFC 1321 vectors before they are trusted.
        #expect(
            Reference.hex(Reference.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        #expect(
            Reference.hex(Reference.sha256([]))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        #expect(
            Reference.hex(Reference.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        #expect(Reference.hex(Reference.md5([])) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(
            Reference.hex(Reference.md5(Array("The quick brown fox jumps over the lazy dog".utf8)))
                == "9e107d9d372bb6826bd81d3542a419d6"
        )
        #expect(Reference.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(
            Reference.chainLink(previous: HashChain.initialValue, checksum: "CffgLxKQviEdpweiZvFTsw==")
                == "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c="
        )
    }

    // MARK: Against the reference implementations

    @Test(arguments: [0, 1, 3, 15, 16, 63, 64, 65, 255, 1000, 4096, 65537])
    func checksumsMatchReference(count: Int) {
        let bytes = Payload.random(count: count, seed: UInt64(count) + 7)
        #expect(Checksums.crc32c(bytes) == Reference.crc32c(bytes))
        #expect(Checksums.md5Base64(bytes) == Reference.md5Base64(bytes))
        #expect(
            Checksums.sha256Base64(String(decoding: bytes.map { 0x20 + $0 % 90 }, as: UTF8.self))
                == Reference.base64(Reference.sha256(bytes.map { 0x20 + $0 % 90 }))
        )
        bytes.withUnsafeBytes { raw in
            #expect(Checksums.sha256Hex(raw) == Reference.hex(Reference.sha256(bytes)))
        }
    }

    @Test func crc32cContinuesFromASeed() {
        let bytes = Payload.random(count: 10_000, seed: 1)
        for split in [0, 1, 4999, 9999, 10_000] {
            let whole = Checksums.crc32c(bytes)
            let first = bytes[0..<split].withUnsafeBytes { Checksums.crc32c($0) }
            let both = bytes[split...].withUnsafeBytes { Checksums.crc32c($0, seed: first) }
            #expect(both == whole, "split at \(split)")
        }
    }

    @Test func crc32cIsSensitiveToEveryByte() {
        var bytes = Payload.random(count: 512, seed: 2)
        let original = Checksums.crc32c(bytes)
        for i in stride(from: 0, to: 512, by: 37) {
            bytes[i] ^= 0x01
            #expect(Checksums.crc32c(bytes) != original)
            bytes[i] ^= 0x01
        }
        #expect(Checksums.crc32c(bytes) == original)
    }

    @Test(arguments: [UInt32(0), 1, 0xABC, 0xE306_9283, 0xFFFF_FFFF])
    func crc32cStringIsEightLowercaseHexDigits(value: UInt32) {
        let s = Checksums.crc32cString(value)
        #expect(s.count == 8)
        #expect(s == s.lowercased())
        #expect(UInt32(s, radix: 16) == value)
    }

    // MARK: The chain

    @Test func nativeChainMatchesIndependentComputation() {
        // Native format: the chain runs over the 8-hex-digit CRC32C strings of the blobs.
        let blobs = (0..<6).map { Payload.random(count: 100 * ($0 + 1), seed: UInt64($0)) } + [[]]
        var chain = HashChain()
        var expected = Reference.chainInitialValue
        for blob in blobs {
            let checksum = Reference.crc32cString(blob)
            #expect(Checksums.crc32cString(Checksums.crc32c(blob)) == checksum)
            expected = Reference.chainLink(previous: expected, checksum: checksum)
            #expect(chain.append(checksum) == expected)
        }
        #expect(chain.value == expected)
        #expect(expected.count == 44)
    }

    @Test func upstreamChainMatchesIndependentComputation() {
        let blobs = (0..<5).map { Payload.compressible(count: 300 + $0, seed: UInt64($0)) } + [[]]
        var chain = HashChain()
        var expected = Reference.chainInitialValue
        for blob in blobs {
            let md5 = Reference.md5Base64(blob)
            #expect(Checksums.md5Base64(blob) == md5)
            expected = Reference.chainLink(previous: expected, checksum: md5)
            chain.append(md5)
            #expect(chain.value == expected)
        }
    }

    @Test func chainDependsOnOrder() {
        var ab = HashChain()
        ab.append("aaaaaaaa")
        ab.append("bbbbbbbb")
        var ba = HashChain()
        ba.append("bbbbbbbb")
        ba.append("aaaaaaaa")
        #expect(ab != ba)
        var a = HashChain()
        a.append("aaaaaaaa")
        #expect(a != ab)
        #expect(HashChain(value: a.value) == a)
    }
}

@Suite struct Base64Tests {
    /// RFC 4648 §10 test vectors.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ]

    @Test(arguments: vectors)
    func rfc4648(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test func roundTripsAndMatchesFoundation() {
        for count in 0..<70 {
            let bytes = Payload.random(count: count, seed: UInt64(count))
            let encoded = Base64.encode(bytes)
            #expect(encoded == Reference.base64(bytes))
            #expect(Base64.decode(encoded) == bytes)
        }
    }

    @Test(arguments: ["Zg=", "Z===", "Zm9v!", "Zg==Zg==", "Zm=v", "====", "Zm9", "Zg\n=="])
    func rejectsInvalidInput(text: String) {
        #expect(Base64.decode(text) == nil)
    }
}
