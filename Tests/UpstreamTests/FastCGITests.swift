import HTTPCore
import IOCore
import Testing

@testable import Upstream

/// Builds raw application records (what php-fpm sends) by hand, independent of the encoder.
private func record(_ type: UInt8, _ content: [UInt8], padding: Int = 0, id: UInt16 = 1) -> [UInt8] {
    [1, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(content.count >> 8), UInt8(content.count & 0xFF), UInt8(padding), 0]
        + content + [UInt8](repeating: 0xEE, count: padding)
}

private func endRequest(app: UInt32, proto: UInt8 = 0) -> [UInt8] {
    record(3, [UInt8(app >> 24), UInt8(app >> 16 & 0xFF), UInt8(app >> 8 & 0xFF), UInt8(app & 0xFF), proto, 0, 0, 0])
}

/// Feeds `wire` in pieces of `step` bytes; returns STDOUT, STDERR and the END_REQUEST status.
private func decode(_ wire: [UInt8], step: Int) -> (out: [UInt8], err: [UInt8], end: UInt32?, failed: FastCGIError?) {
    var d = FastCGIResponseDecoder()
    let input = ByteBuffer(capacity: 16)
    var out: [UInt8] = [], err: [UInt8] = []
    var end: UInt32? = nil
    var i = 0
    while i < wire.count || input.readableBytes > 0 {
        if i < wire.count {
            let n = min(step, wire.count - i)
            wire[i..<(i + n)].withUnsafeBytes { input.append($0) }
            i += n
        }
        loop: while true {
            switch d.next(input) {
            case .stdout(let n):
                out += Array(UnsafeRawBufferPointer(start: input.base + input.readerIndex, count: n))
                input.consume(n)
            case .stderr(let n):
                err += Array(UnsafeRawBufferPointer(start: input.base + input.readerIndex, count: n))
                input.consume(n)
            case .end(let app, _):
                end = app
            case .needMore:
                break loop
            case .failure(let e):
                return (out, err, end, e)
            }
        }
        if i >= wire.count { break }
    }
    return (out, err, end, nil)
}

@Suite("FastCGI records (FastCGI spec §3, §5)")
struct FastCGIRecordTests {
    @Test func beginRequestIsAResponderWithoutKeepConn() {
        let b = ByteBuffer(capacity: 16)
        FastCGI.appendBeginRequest(keepConn: false, into: b)
        #expect(Array(b.readable) == [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        b.clear()
        FastCGI.appendBeginRequest(keepConn: true, into: b)
        #expect(b.readable[10] == 1)
    }

    @Test func shortAndLongParamLengths() {
        let b = ByteBuffer(capacity: 16)
        let long = [UInt8](repeating: 0x61, count: 300)
        Array("SCRIPT_NAME".utf8).withUnsafeBytes { n in
            Array("/index.php".utf8).withUnsafeBytes { v in FastCGI.appendPair(name: n, value: v, into: b) }
        }
        Array("HTTP_X_LONG".utf8).withUnsafeBytes { n in long.withUnsafeBytes { v in FastCGI.appendPair(name: n, value: v, into: b) } }
        let bytes = Array(b.readable)
        #expect(bytes[0] == 11 && bytes[1] == 10)
        // 300 = 0x12C, written in four bytes with the high bit set.
        let second = 2 + 11 + 10
        #expect(Array(bytes[second..<(second + 5)]) == [11, 0x80, 0, 0x01, 0x2C])
        let pairs = FastCGI.decodePairs(bytes)
        #expect(pairs?.count == 2)
        #expect(pairs?[1].0 == Array("HTTP_X_LONG".utf8) && pairs?[1].1 == long)
        // A 127-byte value still fits in one length byte; 128 does not.
        b.clear()
        [UInt8](repeating: 0x62, count: 127).withUnsafeBytes { v in FastCGI.appendPair("A", value: v, into: b) }
        #expect(b.readable[1] == 127 && b.readableBytes == 2 + 1 + 127)
        b.clear()
        [UInt8](repeating: 0x62, count: 128).withUnsafeBytes { v in FastCGI.appendPair("A", value: v, into: b) }
        #expect(Array(b.readable.prefix(5)) == [1, 0x80, 0, 0, 128])
    }

    @Test func streamsAreSplitAndPadded() {
        let b = ByteBuffer(capacity: 16)
        let content = (0..<(FastCGI.chunkContent + 13)).map { UInt8(truncatingIfNeeded: $0) }
        content.withUnsafeBytes { FastCGI.appendStream(.stdin, $0, into: b) }
        FastCGI.appendEndOfStream(.stdin, into: b)
        let w = Array(b.readable)
        // First record: full chunk, no padding.
        #expect(w[1] == 5 && Int(w[4]) << 8 | Int(w[5]) == FastCGI.chunkContent && w[6] == 0)
        // Second: 13 bytes padded to 16.
        let second = 8 + FastCGI.chunkContent
        #expect(Int(w[second + 4]) << 8 | Int(w[second + 5]) == 13 && w[second + 6] == 3)
        #expect(Array(w[(second + 8)..<(second + 21)]) == Array(content.suffix(13)))
        // Then the empty record that ends the stream.
        #expect(Array(w.suffix(8)) == [1, 5, 0, 1, 0, 0, 0, 0])
        #expect(w.count == 8 + FastCGI.chunkContent + 8 + 16 + 8)
        // An empty stream writes nothing before the end record.
        b.clear()
        [UInt8]().withUnsafeBytes { FastCGI.appendStream(.params, $0, into: b) }
        #expect(b.readableBytes == 0)
    }

    @Test(arguments: [1, 3, 7, 8, 64, 100_000])
    func decodesRecordsSplitAnywhere(_ step: Int) {
        let body = Array("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nmissing".utf8)
        let wire = record(6, Array(body[0..<10]), padding: 6)
            + record(7, Array("warn: x\n".utf8), padding: 0)
            + record(9, [1, 2, 3], padding: 5, id: 0)  // a management record: skipped
            + record(6, Array(body[10...]), padding: 3)
            + record(6, [])
            + endRequest(app: 255)
        let r = decode(wire, step: step)
        #expect(r.failed == nil)
        #expect(r.out == body)
        #expect(r.err == Array("warn: x\n".utf8))
        #expect(r.end == 255)
    }

    @Test func refusesForeignRecords() {
        #expect(decode(record(6, [1], id: 2), step: 100).failed == .badRequestID)
        var bad = record(6, [1])
        bad[0] = 2
        #expect(decode(bad, step: 100).failed == .badVersion)
        #expect(decode(record(3, [0, 0, 0]), step: 100).failed == .badEndRequest)
    }

    @Test func encoderOutputDecodes() {
        // STDOUT records written by our own encoder read back through the decoder.
        let b = ByteBuffer(capacity: 16)
        let content = (0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        content.withUnsafeBytes { FastCGI.appendStream(.stdout, $0, into: b) }
        let wire = Array(b.readable) + endRequest(app: 0)
        let r = decode(wire, step: 4093)
        #expect(r.out == content && r.end == 0)
    }
}

@Suite("FastCGI CGI parameters (Caddy's buildEnv)")
struct FastCGIParamTests {
    @Test func splitPosition() {
        let php = [Array(".php".utf8)]
        #expect(FastCGIParams.splitPosition(Array("/index.php/a/b".utf8), php) == 10)
        #expect(FastCGIParams.splitPosition(Array("/INDEX.PHP".utf8), php) == 10)
        #expect(FastCGIParams.splitPosition(Array("/static.txt".utf8), php) == -1)
        #expect(FastCGIParams.splitPosition(Array("/x".utf8), []) == 0)
    }

    @Test func sanitizedJoinStaysInsideTheRoot() {
        func j(_ r: String, _ p: String) -> String { String(decoding: FastCGIParams.sanitizedJoin(Array(r.utf8), Array(p.utf8)), as: UTF8.self) }
        #expect(j("/srv", "/index.php") == "/srv/index.php")
        #expect(j("/srv", "/../../etc/passwd") == "/srv/etc/passwd")
        #expect(j("/srv", "") == "/srv")
        #expect(j("/srv", "/a/") == "/srv/a/")
        #expect(j("/", "/a") == "/a")
    }

    @Test func cgiHeadParsing() {
        var p = ResponseHeadParser()
        p.resetForCGI()
        var f = HTTPFields()
        let b = buffer("status: 302 Found\r\nlocation: /x\r\nx-powered-by: PHP\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbody")
        #expect(p.parse(b, into: &f) == .complete)
        #expect(p.status == 302)
        #expect(f.pairs.map { $0.0 } == ["Status", "Location", "X-Powered-By", "Set-Cookie", "Set-Cookie"])
        p.resetForCGI()
        f = HTTPFields()
        #expect(p.parse(buffer("Content-Type: text/html\r\n\r\n"), into: &f) == .complete)
        #expect(p.status == 200)
        p.resetForCGI()
        #expect(p.parse(buffer("Status: abc\r\n\r\n"), into: &f) == .failure(.badStatusLine))
    }
}
