import HTTPCore
import IOCore
import Testing

@testable import Handlers

/// `encode`: negotiation, when to compress, header edits, streaming, pooling.
@Suite("Directive encode")
struct DirectiveEncodeTests {
    static let big = String(repeating: "All work and no play makes Jack a dull boy. ", count: 240)

    func serve(_ request: HTTPRequest, body: String = big, status: Int = 200, headers: [(String, String)] = [],
               settings: EncodeHandler.Settings = .init(codings: [.gzip, .zstd])) -> DirectiveSink {
        let enc = EncodeHandler(settings)
        let respond = RespondHandler(status: status, body: Template(body), headers: headers.map { ($0.0, Template($0.1)) })
        return directiveRun(directiveServer([Route(handlers: [enc, respond])]), request)
    }

    func get(_ ae: String?, extra: [(String, String)] = [], method: String = "GET") -> HTTPRequest {
        directiveRequest(method, "/", headers: (ae.map { [("Accept-Encoding", $0)] } ?? []) + extra)
    }

    @Test(arguments: [
        ("gzip", "gzip"), ("zstd", "zstd"), ("zstd, gzip", "gzip"), ("gzip;q=0.5, zstd;q=0.9", "zstd"),
        ("GZIP", "gzip"), ("gzip;q=0, zstd;q=0", nil), ("identity", nil), ("*", nil), ("br", nil),
        ("gzip;q=abc", "gzip"), ("gzip;level=1;q=0", "gzip"), ("x, zstd;q=0.001, gzip;q=0.0001", "zstd"),
    ] as [(String, String?)])
    func negotiation(_ header: String, _ expected: String?) {
        let s = serve(get(header))
        #expect(s.header("Content-Encoding") == expected, "\(header)")
    }

    @Test func gzipRoundTripAndHeaders() throws {
        let s = serve(get("gzip"), headers: [("Etag", "\"v1\""), ("Accept-Ranges", "bytes")])
        #expect(s.status == 200)
        #expect(s.header("Content-Encoding") == "gzip")
        #expect(s.headers("Vary") == ["Accept-Encoding"])
        #expect(s.header("Etag") == "\"v1-gzip\"")
        #expect(s.header("Accept-Ranges") == nil)
        #expect(s.completes == 1)  // fits one buffer: sent whole, with a length
        let plain = try #require(Decompression.gunzip(s.body))
        #expect(String(decoding: plain, as: UTF8.self) == DirectiveEncodeTests.big)
        #expect(s.body.count < plain.count / 10)
    }

    @Test func zstdRoundTrip() throws {
        let s = serve(get("zstd"))
        #expect(s.header("Content-Encoding") == "zstd")
        #expect(String(decoding: try #require(Decompression.unzstd(s.body)), as: UTF8.self) == DirectiveEncodeTests.big)
    }

    @Test func notCompressed() {
        // Too short, wrong type, already encoded, no-transform (either side), weak etag kept.
        #expect(serve(get("gzip"), body: "tiny").header("Content-Encoding") == nil)
        #expect(serve(get("gzip"), body: "tiny").header("Vary") == nil)
        #expect(serve(get("gzip"), headers: [("Content-Type", "image/png")]).header("Content-Encoding") == nil)
        #expect(serve(get("gzip"), headers: [("Content-Encoding", "br")]).header("Content-Encoding") == "br")
        #expect(serve(get("gzip"), headers: [("Cache-Control", "no-transform")]).header("Content-Encoding") == nil)
        #expect(serve(get("gzip", extra: [("Cache-Control", "no-transform")])).header("Content-Encoding") == nil)
        #expect(serve(get("gzip", extra: [("Sec-WebSocket-Key", "k")])).header("Content-Encoding") == nil)
        #expect(serve(get("gzip"), status: 206).header("Content-Encoding") == nil)
        #expect(serve(get("gzip"), headers: [("Etag", "W/\"w\"")]).header("Etag") == "W/\"w\"")
    }

    @Test func notModifiedGetsVary() {
        let s = serve(get("gzip"), body: "", status: 304)
        #expect(s.headers("Vary") == ["Accept-Encoding"])
        #expect(s.header("Content-Encoding") == nil)
    }

    @Test func headGetsHeadersButNoWork() {
        let s = serve(get("gzip", method: "HEAD"))
        #expect(s.header("Content-Encoding") == "gzip")
        #expect(s.streamed && s.declaredLength == .some(nil) && s.body.isEmpty)
    }

    @Test func largeBodiesStreamInChunks() throws {
        // Incompressible-ish body larger than one output buffer: sent chunked, never whole.
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<200_000).map { _ in UInt8(ascii: "a") + UInt8(g.next(upperBound: UInt8(26))) }
        let s = serve(get("gzip"), body: String(decoding: bytes, as: UTF8.self))
        #expect(s.streamed && s.declaredLength == .some(nil))
        #expect(try #require(Decompression.gunzip(s.body)) == bytes)
    }

    @Test func streamedResponsesAreCompressedAsWritten() throws {
        final class Streamer: Handler {
            func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
                response.fields.append(.contentType, "text/plain")
                response.sendHead(contentLength: nil)
                for _ in 0..<50 { Array(DirectiveEncodeTests.big.utf8).withUnsafeBytes { response.write($0) } }
                response.finish()
                return .done
            }
        }
        let enc = EncodeHandler(.init(codings: [.zstd]))
        let s = directiveRun(directiveServer([Route(handlers: [enc, Streamer()])]), get("zstd"))
        #expect(s.header("Content-Encoding") == "zstd")
        let plain = try #require(Decompression.unzstd(s.body))
        #expect(plain.count == DirectiveEncodeTests.big.utf8.count * 50)
    }

    @Test func knownLengthBelowMinimumIsPassedThrough() {
        final class Fixed: Handler {
            func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
                response.fields.append(.contentType, "text/plain")
                response.sendHead(contentLength: 3)
                Array("abc".utf8).withUnsafeBytes { response.write($0) }
                response.finish()
                return .done
            }
        }
        let s = directiveRun(directiveServer([Route(handlers: [EncodeHandler(.init()), Fixed()])]), get("gzip"))
        #expect(s.header("Content-Encoding") == nil && s.declaredLength == .some(3) && s.text == "abc")
    }

    @Test func ifNoneMatchSuffixIsStripped() {
        let r = get("gzip", extra: [("If-None-Match", "\"v1-gzip\"")])
        _ = serve(r)
        #expect(r.fields.value(.ifNoneMatch) == "\"v1\"")
        let weak = get("gzip", extra: [("If-None-Match", "W/\"v1-gzip\"")])
        _ = serve(weak)
        #expect(weak.fields.value(.ifNoneMatch) == "W/\"v1-gzip\"")
    }

    @Test func missingContentTypeIsSniffed() {
        final class NoType: Handler {
            func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
                Array(("<html><body>" + DirectiveEncodeTests.big).utf8).withUnsafeBytes { response.send(body: $0) }
                return .done
            }
        }
        let s = directiveRun(directiveServer([Route(handlers: [EncodeHandler(.init()), NoType()])]), get("gzip"))
        #expect(s.header("Content-Type") == "text/html; charset=utf-8")
        #expect(s.header("Content-Encoding") == "gzip")
    }

    @Test func compressorsArePooled() {
        let enc = EncodeHandler(.init(codings: [.gzip]))
        let respond = RespondHandler(body: Template(DirectiveEncodeTests.big))
        let server = directiveServer([Route(handlers: [enc, respond])])
        _ = directiveRun(server, get("gzip"))
        let first = enc.pools[0].acquire()
        enc.pools[0].release(first)
        _ = directiveRun(server, get("gzip"))
        let again = enc.pools[0].acquire()
        #expect(first === again)
    }
}
