import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("HTTP1Parser")
struct ParserTests {
    func parse(_ s: String, limits: HTTP1Limits = HTTP1Limits()) -> (HTTP1Parser.Result, HTTP1Parser, HTTPRequest) {
        let input = ByteBuffer()
        input.append(Array(s.utf8))
        let req = HTTPRequest()
        var p = HTTP1Parser()
        let r = p.parse(input, into: req, limits: limits)
        return (r, p, req)
    }

    /// Parsing the same head again into the reused request does not grow any storage: once
    /// warm, the parser allocates nothing (capacity unchanged is the observable proxy).
    @Test func reuseDoesNotGrowStorage() {
        let head = Array(
            "GET /some/longer/path/to/a/resource?with=query&and=more HTTP/1.1\r\nHost: www.example.com:8443\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: a=b; c=d; session=0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
                .utf8)
        let input = ByteBuffer(capacity: 4096)
        let req = HTTPRequest()
        var p = HTTP1Parser()
        func once() {
            req.reset()
            p.reset()
            input.append(head)
            #expect(p.parse(input, into: req, limits: HTTP1Limits()) == .complete)
            #expect(input.isEmpty)
        }
        once()
        let caps = (req.line.capacity, req.fields.arena.capacity, req.fields.entries.capacity, input.capacity)
        let base = input.base
        for _ in 0..<100 { once() }
        #expect(req.line.capacity == caps.0)
        #expect(req.fields.arena.capacity == caps.1)
        #expect(req.fields.entries.capacity == caps.2)
        #expect(input.capacity == caps.3)
        #expect(input.base == base)
        #expect(req.fields.count == 8)  // Host is not a field
        #expect(req.hostString == "www.example.com")
    }

    /// The whole connection path (parse, respond, encode, reset) reuses its storage too.
    @Test func connectionReuseDoesNotGrowStorage() {
        let h = Harness()
        let one = Array("GET /x?y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n".utf8)
        h.feed(one)
        _ = h.take()
        h.feed(one)
        _ = h.take()
        let caps = (
            h.conn.request.line.capacity, h.conn.request.fields.arena.capacity, h.conn.response.fields.arena.capacity,
            h.input.capacity, h.output.capacity
        )
        for _ in 0..<50 {
            h.feed(one)
            _ = h.take()
        }
        #expect(
            caps
                == (
                    h.conn.request.line.capacity, h.conn.request.fields.arena.capacity,
                    h.conn.response.fields.arena.capacity, h.input.capacity, h.output.capacity
                ))
    }

    @Test func incompleteHeadConsumesCompleteLinesOnly() {
        let input = ByteBuffer()
        input.append(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Partial: va".utf8))
        let req = HTTPRequest()
        var p = HTTP1Parser()
        #expect(p.parse(input, into: req, limits: HTTP1Limits()) == .needMore)
        #expect(String(decoding: input.readableArray(), as: UTF8.self) == "X-Partial: va")
        #expect(p.phase == .fields)
        input.append(Array("lue\r\n\r\n".utf8))
        #expect(p.parse(input, into: req, limits: HTTP1Limits()) == .complete)
        #expect(req.fields.value(named: "x-partial") == "value")
        #expect(p.headBytes == 45)
    }

    @Test func framingFacts() {
        var (r, p, req) = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n")
        #expect(r == .complete)
        #expect(p.framing == .length(42))
        #expect(req.contentLength == 42)
        (r, p, req) = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        #expect(p.framing == .none)
        (r, p, req) = parse("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n")
        #expect(p.framing == .chunked)
        #expect(req.hasStreamingBody)
        (r, p, req) = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n")
        #expect(p.keepAlive)
        (r, p, req) = parse("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n")
        #expect(!p.keepAlive)
        (r, p, req) = parse("GET / HTTP/1.0\r\nconnection: KEEP-ALIVE\r\n\r\n")
        #expect(p.keepAlive)
        #expect(r == .complete)
        #expect(req.version == .http1_0)
        #expect(req.authorityRange == nil)
    }

    @Test func targetForms() {
        var (r, p, req) = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(r == .complete && p.targetForm == .asterisk && req.targetString == "*")
        (r, p, req) = parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")
        #expect(r == .complete && p.targetForm == .authority && req.pathString == "")
        (r, p, req) = parse("GET http://a.b/c HTTP/1.1\r\nHost: z\r\n\r\n")
        #expect(r == .complete && p.targetForm == .absolute && req.pathString == "/c")
        (r, p, req) = parse("GET /p? HTTP/1.1\r\nHost: z\r\n\r\n")
        #expect(r == .complete && req.pathString == "/p" && req.queryRange?.isEmpty == true)
        (r, p, req) = parse("GET /p HTTP/1.1\r\nHost: z\r\n\r\n")
        #expect(req.queryRange == nil)
    }

    @Test func leadingEmptyLinesCountTowardsTheLimit() {
        var limits = HTTP1Limits()
        limits.maxHeadBytes = 64
        let (r, _, _) = parse(String(repeating: "\r\n", count: 40), limits: limits)
        #expect(r == .failure(.headTooLarge))
    }
}

@Suite("ByteClass")
struct ByteClassTests {
    @Test func tcharMatchesRFC9110() {
        let specials = Array("!#$%&'*+-.^_`|~".utf8)
        for b in 0...255 {
            let c = UInt8(b)
            let expected =
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || specials.contains(c)
            #expect(ByteClass.isTchar(c) == expected, "byte \(b)")
        }
    }

    /// The 8-bytes-at-a-time value check agrees with the byte-wise rule everywhere.
    @Test func wordwiseValueCheckMatchesBytewise() {
        var rng = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0xC3, 0xFF]
        for _ in 0..<5000 {
            let n = Int.random(in: 0...40, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
            for _ in 0..<Int.random(in: 0...2, using: &rng) where n > 0 {
                bytes[Int.random(in: 0..<n, using: &rng)] = interesting.randomElement(using: &rng)!
            }
            let expected = bytes.allSatisfy(ByteClass.isFieldValueByte)
            let got = bytes.withUnsafeBufferPointer { b in
                b.baseAddress.map { ByteClass.isValidFieldValue($0, 0, n) } ?? true
            }
            #expect(got == expected, "\(bytes)")
        }
    }

    @Test func hostBytesMatchGo() {
        let specials = Array("!$%&'()*+,-.:;=[]_~".utf8)
        for b in 0...255 {
            let c = UInt8(b)
            let expected =
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || specials.contains(c)
            #expect(ByteClass.isHostByte(c) == expected, "byte \(b)")
        }
    }
}
