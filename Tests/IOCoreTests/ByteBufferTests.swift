import Testing

@testable import IOCore

@Suite("ByteBuffer")
struct ByteBufferTests {
    private func text(_ b: ByteBuffer) -> String { String(decoding: b.readable, as: UTF8.self) }

    @Test func minimumCapacityIsSixteen() {
        #expect(ByteBuffer(capacity: 0).capacity == 16)
        #expect(ByteBuffer(capacity: 3).capacity == 16)
        #expect(ByteBuffer(capacity: 100).capacity == 100)
        let b = ByteBuffer()
        #expect(b.capacity == 4096)
        #expect(b.isEmpty && b.readableBytes == 0 && b.writableBytes == 4096)
    }

    @Test func appendAllForms() {
        let b = ByteBuffer(capacity: 16)
        b.append([0x61, 0x62])
        b.append("cd")
        b.append(string: "éf")
        b.append(byte: UInt8(ascii: "g"))
        [UInt8]("hi".utf8).withUnsafeBytes { b.append($0) }
        b.append(UnsafeRawBufferPointer(start: nil, count: 0))
        b.append([])
        #expect(text(b) == "abcdéfghi")
        #expect(b.readableBytes == 10)
        #expect(b.readableArray() == Array("abcdéfghi".utf8))
        #expect(!b.isEmpty)
    }

    @Test func consumePartialThenAllResetsIndexes() {
        let b = ByteBuffer(capacity: 32)
        b.append("hello world")
        b.consume(6)
        #expect(b.readerIndex == 6 && b.writerIndex == 11)
        #expect(text(b) == "world")
        b.consume(5)
        #expect(b.readerIndex == 0 && b.writerIndex == 0)
        #expect(b.isEmpty)
        // Over-consuming also resets rather than going negative.
        b.append("xy")
        b.consume(10)
        #expect(b.readerIndex == 0 && b.writerIndex == 0)
    }

    @Test func compactMovesReadableBytesToFront() {
        let b = ByteBuffer(capacity: 32)
        b.append("0123456789")
        b.consume(4)
        b.compact()
        #expect(b.readerIndex == 0 && b.writerIndex == 6)
        #expect(text(b) == "456789")
        #expect(b.writableBytes == 26)
        // Compacting an already-compact buffer changes nothing.
        b.compact()
        #expect(b.readerIndex == 0 && b.writerIndex == 6 && text(b) == "456789")
    }

    @Test func reserveWritableCompactsBeforeGrowing() {
        let b = ByteBuffer(capacity: 16)
        b.append("0123456789abcd")  // 14 bytes
        b.consume(10)  // 4 readable at 10..<14, 2 writable
        let base = b.base
        b.reserveWritable(10)  // fits after compaction (16 - 4 = 12)
        #expect(b.capacity == 16)
        #expect(b.base == base)
        #expect(b.readerIndex == 0 && b.writerIndex == 4)
        #expect(text(b) == "abcd")
        #expect(b.writableBytes >= 10)
    }

    @Test func reserveWritableDoesNothingWhenSpaceSuffices() {
        let b = ByteBuffer(capacity: 64)
        b.append("abc")
        b.consume(1)
        b.reserveWritable(10)
        #expect(b.readerIndex == 1 && b.writerIndex == 3 && b.capacity == 64)
    }

    @Test func growDoublesUntilItFitsAndKeepsContent() {
        let b = ByteBuffer(capacity: 16)
        b.append("0123456789")
        b.consume(2)
        b.reserveWritable(100)
        // 8 readable after compaction; 16→32→64→128 is the first with 120 free.
        #expect(b.capacity == 128)
        #expect(text(b) == "23456789")
        #expect(b.writableBytes >= 100)
        let big = [UInt8](repeating: 0x7A, count: 10_000)
        b.append(big)
        #expect(b.readableBytes == 10_008)
        #expect(Array(b.readable.suffix(10_000)) == big)
        #expect(b.capacity.nonzeroBitCount == 1)
    }

    @Test func writePointerAndCommit() {
        let b = ByteBuffer(capacity: 16)
        b.append("ab")
        b.reserveWritable(3)
        b.writePointer[0] = UInt8(ascii: "c")
        b.writePointer[1] = UInt8(ascii: "d")
        b.commit(2)
        #expect(text(b) == "abcd")
    }

    @Test func clearDropsEverything() {
        let b = ByteBuffer(capacity: 16)
        b.append("abc")
        b.consume(1)
        b.clear()
        #expect(b.readerIndex == 0 && b.writerIndex == 0 && b.isEmpty)
    }

    @Test(arguments: [0, 1, 9, 10, 99, 100, -1, -9, -10, 1_234_567_890, -987_654_321, Int.max, Int.min, Int.min + 1, Int.max - 1])
    func appendDecimal(_ v: Int) {
        let b = ByteBuffer(capacity: 16)
        b.append("x")
        b.appendDecimal(v)
        #expect(text(b) == "x" + String(v))
    }

    @Test func appendDecimalRandomAndBackToBack() {
        var rng = SystemRandomNumberGenerator()
        let b = ByteBuffer(capacity: 16)
        var expected = ""
        for _ in 0..<2000 {
            let v = Int.random(in: Int.min...Int.max, using: &rng) >> Int.random(in: 0...63, using: &rng)
            b.appendDecimal(v)
            b.append(byte: 0x2C)
            expected += String(v) + ","
        }
        #expect(text(b) == expected)
    }

    @Test(arguments: [(0, "0"), (1, "1"), (15, "f"), (16, "10"), (255, "ff"), (4096, "1000"),
                      (0xdead_beef, "deadbeef"), (Int.max, "7fffffffffffffff")])
    func appendHex(_ v: Int, _ s: String) {
        let b = ByteBuffer(capacity: 16)
        b.appendHex(v)
        #expect(text(b) == s)
    }

    @Test func appendHexRandom() {
        let b = ByteBuffer(capacity: 16)
        var expected = ""
        for _ in 0..<1000 {
            let v = Int.random(in: 0...Int.max) >> Int.random(in: 0...62)
            b.appendHex(v)
            b.append(byte: 0x0A)
            expected += String(v, radix: 16) + "\n"
        }
        #expect(text(b) == expected)
    }

    @Test func shrinkIfEmptyOnlyWhenEmptyAndMuchLarger() {
        let b = ByteBuffer(capacity: 64)
        b.reserveWritable(1000)
        #expect(b.capacity == 1024)
        b.append("x")
        b.shrinkIfEmpty(to: 64)
        #expect(b.capacity == 1024)  // not empty
        b.consume(1)
        b.shrinkIfEmpty(to: 256)
        #expect(b.capacity == 1024)  // 1024 is not more than 4 × 256
        b.shrinkIfEmpty(to: 64)
        #expect(b.capacity == 64)
        #expect(b.readerIndex == 0 && b.writerIndex == 0)
        b.append("still usable")
        #expect(text(b) == "still usable")
    }
}
