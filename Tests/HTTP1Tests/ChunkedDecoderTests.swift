import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("ChunkedDecoder")
struct ChunkedDecoderTests {
    /// Decodes `chunks` fed one piece at a time; returns data, trailers and the final step.
    func decode(_ pieces: [String], limits: HTTP1Limits = HTTP1Limits()) -> (String, [(String, String)], BodyStep) {
        let input = ByteBuffer()
        var d = ChunkedDecoder()
        var trailers = HTTPFields()
        var data: [UInt8] = []
        var last: BodyStep = .needMore
        for piece in pieces {
            input.append(Array(piece.utf8))
            loop: while true {
                last = d.next(input, trailers: &trailers, limits: limits)
                switch last {
                case .data(let n):
                    data += UnsafeRawBufferPointer(start: input.base + input.readerIndex, count: n)
                    input.consume(n)
                case .needMore, .done, .failure:
                    break loop
                }
            }
        }
        return (String(decoding: data, as: UTF8.self), trailers.pairs, last)
    }

    @Test func decodesWholeAndSplit() {
        let body = "4\r\nWiki\r\n7;ext=\"q;x\"\r\npedia i\r\nB \r\nn \r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
        let (data, trailers, last) = decode([body])
        #expect(data == "Wikipedia in \r\nchunks.")
        #expect(trailers.map { $0.0 + "=" + $0.1 } == ["Expires=never"])
        #expect(last == .done)
        let chars = body.map { String($0) }
        let (d2, t2, l2) = decode(chars)
        #expect(d2 == data && t2.count == 1 && l2 == .done)
    }

    @Test func leavesFollowingBytesAlone() {
        let input = ByteBuffer()
        input.append(Array("1\r\na\r\n0\r\n\r\nGET".utf8))
        var d = ChunkedDecoder()
        var t = HTTPFields()
        #expect(d.next(input, trailers: &t, limits: HTTP1Limits()) == .data(1))
        input.consume(1)
        #expect(d.next(input, trailers: &t, limits: HTTP1Limits()) == .done)
        #expect(String(decoding: input.readableArray(), as: UTF8.self) == "GET")
        #expect(d.next(input, trailers: &t, limits: HTTP1Limits()) == .done)
    }

    @Test func hugeButValidSizesAreAccepted() {
        let (_, _, last) = decode(["3ffffffffffffff\r\nabc"])
        #expect(last == .needMore)
        let (_, _, over) = decode(["40000000000000000\r\n"])
        #expect(over == .failure(.invalidChunkedBody))
    }

    @Test func uppercaseHexAndLeadingZeros() {
        let (data, _, last) = decode(["000A\r\n0123456789\r\n00\r\n\r\n"])
        #expect(data == "0123456789")
        #expect(last == .done)
    }

    @Test func trailerLimits() {
        var limits = HTTP1Limits()
        limits.maxTrailerFields = 2
        let (_, _, last) = decode(["0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"], limits: limits)
        #expect(last == .failure(.trailersTooLarge))
    }
}

@Suite("HTTP1Encoder")
struct EncoderTests {
    @Test func chunkFraming() {
        let out = ByteBuffer()
        Array(repeating: UInt8(ascii: "z"), count: 300).withUnsafeBytes { HTTP1Encoder.writeChunk(into: out, $0) }
        HTTP1Encoder.writeLastChunk(into: out)
        let s = String(decoding: out.readableArray(), as: UTF8.self)
        #expect(s == "12c\r\n" + String(repeating: "z", count: 300) + "\r\n0\r\n\r\n")
    }

    @Test func rawWriterDecimalAndHex() {
        let out = ByteBuffer()
        out.write(reserving: 64) { w in
            w.putDecimal(0)
            w.put(byte: 0x20)
            w.putDecimal(9_223_372_036_854_775_807)
            w.put(byte: 0x20)
            w.putHex(0)
            w.put(byte: 0x20)
            w.putHex(0xABCDEF)
        }
        #expect(String(decoding: out.readableArray(), as: UTF8.self) == "0 9223372036854775807 0 abcdef")
    }

    @Test func errorShapes() {
        let out = ByteBuffer()
        let date = Array("Sun, 06 Nov 1994 08:49:37 GMT".utf8)
        date.withUnsafeBytes { d in
            HTTP1Encoder.writeError(into: out, .unsupportedVersion, server: nil, date: d)
        }
        #expect(
            String(decoding: out.readableArray(), as: UTF8.self)
                == "HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n505 HTTP Version Not Supported: unsupported protocol version")
    }
}
