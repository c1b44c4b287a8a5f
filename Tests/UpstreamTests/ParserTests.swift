import HTTPCore
import IOCore
import Testing

@testable import Upstream

func buffer(_ s: String) -> ByteBuffer {
    let b = ByteBuffer(capacity: 64)
    b.append(string: s)
    return b
}

@Suite("Upstream response head parser (RFC 9112 §4, §5)")
struct ResponseHeadParserTests {
    @Test func simpleHead() {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        let b = buffer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: nginx\r\nX-A: b \r\n\r\nhello")
        #expect(p.parse(b, into: &f) == .complete)
        #expect(p.status == 200)
        #expect(p.contentLength == 5)
        #expect(p.keepAlive)
        #expect(p.framing(isHEAD: false) == .length(5))
        #expect(p.framing(isHEAD: true) == .none)
        #expect(f.pairs.map { "\($0.0): \($0.1)" } == ["Content-Length: 5", "Server: nginx", "X-A: b"])
        #expect(String(decoding: b.readable, as: UTF8.self) == "hello")
    }

    @Test func incrementalByteByByte() {
        let text = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
        var p = ResponseHeadParser()
        var f = HTTPFields()
        let b = ByteBuffer(capacity: 16)
        var result: ResponseHeadParser.Result = .needMore
        for byte in text.utf8 {
            b.append(byte: byte)
            result = p.parse(b, into: &f)
            if result != .needMore { break }
        }
        #expect(result == .complete)
        #expect(p.status == 404 && p.chunked && !p.keepAlive)
        #expect(p.framing(isHEAD: false) == .chunked)
    }

    /// The head is appended after fields the caller already has (the client response's own):
    /// an obs-fold line joins the head's last field, and a fold before any field of the head
    /// is an error even when earlier fields exist.
    @Test func appendsAfterExistingFieldsAndFoldsOnlyItsOwn() {
        var f = HTTPFields()
        f.append(name: "Alt-Svc", value: "ours")
        var p = ResponseHeadParser()
        #expect(p.parse(buffer("HTTP/1.1 200 OK\r\nX-A: a\r\n  b\r\nContent-Length: 0\r\n\r\n"), into: &f) == .complete)
        #expect(f.pairs.map { "\($0.0): \($0.1)" } == ["Alt-Svc: ours", "X-A: a b", "Content-Length: 0"])
        var g = HTTPFields()
        g.append(name: "Alt-Svc", value: "ours")
        var q = ResponseHeadParser()
        #expect(q.parse(buffer("HTTP/1.1 200 OK\r\n folded\r\n\r\n"), into: &g) == .failure(.badFieldLine))
        #expect(g.pairs.map { "\($0.0): \($0.1)" } == ["Alt-Svc: ours"])
    }

    @Test func http10AndNoLength() {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        #expect(p.parse(buffer("HTTP/1.0 200 OK\n\n"), into: &f) == .complete)
        #expect(!p.keepAlive)
        #expect(p.framing(isHEAD: false) == .untilClose)
        p.reset()
        #expect(p.parse(buffer("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"), into: &f) == .complete)
        #expect(p.keepAlive && p.framing(isHEAD: false) == .none)
    }

    @Test func noBodyStatuses() {
        for s in ["204 No Content", "304 Not Modified", "100 Continue", "101 Switching Protocols"] {
            var p = ResponseHeadParser()
            var f = HTTPFields()
            #expect(p.parse(buffer("HTTP/1.1 \(s)\r\nContent-Length: 10\r\n\r\n"), into: &f) == .complete)
            #expect(p.framing(isHEAD: false) == .none)
        }
    }

    @Test func missingReasonAndObsFold() {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        #expect(p.parse(buffer("HTTP/1.1 200\r\nX-Long: a\r\n  b\r\n\r\n"), into: &f) == .complete)
        #expect(f.value(named: "x-long") == "a b")
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n", "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ])
    func rejects(_ text: String) {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        guard case .failure = p.parse(buffer(text), into: &f) else {
            Issue.record("accepted \(text.debugDescription)")
            return
        }
    }

    @Test func headTooLarge() {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        let b = buffer("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: ResponseHeadParser.maxHeadBytes + 10))
        #expect(p.parse(b, into: &f) == .failure(.headTooLarge))
    }

    @Test func identicalContentLengthsAccepted() {
        var p = ResponseHeadParser()
        var f = HTTPFields()
        #expect(p.parse(buffer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"), into: &f) == .complete)
        #expect(p.contentLength == 3)
    }
}

@Suite("Upstream response body decoder (RFC 9112 §6.3, §7.1)")
struct ResponseBodyDecoderTests {
    /// Decodes `wire` delivered in pieces of `step` bytes; returns the body or nil on failure.
    func decode(_ framing: ResponseFraming, _ wire: String, step: Int, eof: Bool = false) -> (String, Bool)? {
        var d = ResponseBodyDecoder()
        d.start(framing)
        let input = ByteBuffer(capacity: 16)
        var out: [UInt8] = []
        let bytes = Array(wire.utf8)
        var i = 0
        while true {
            switch d.next(input) {
            case .data(let n):
                out += UnsafeRawBufferPointer(start: input.base + input.readerIndex, count: n)
                input.consume(n)
            case .needMore:
                if i >= bytes.count {
                    if eof {
                        d.finishAtEOF()
                        if case .failure = d.next(input) { return nil }
                        continue
                    }
                    return (String(decoding: out, as: UTF8.self), false)
                }
                let e = min(bytes.count, i + step)
                input.append(Array(bytes[i..<e]))
                i = e
            case .done:
                return (String(decoding: out, as: UTF8.self), true)
            case .failure:
                return nil
            }
        }
    }

    @Test(arguments: [1, 2, 3, 7, 100])
    func chunked(_ step: Int) {
        let wire = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
        let r = decode(.chunked, wire, step: step)
        #expect(r?.0 == "hello world" && r?.1 == true)
    }

    @Test func trailersAreKeptAndFiltered() {
        var d = ResponseBodyDecoder()
        d.start(.chunked)
        let b = buffer("3\r\nabc\r\n0\r\nX-Sum: 12 \r\nContent-Length: 9\r\nbad line\r\nServer-Timing: db;dur=5\r\n\r\n")
        var out = ""
        loop: while true {
            switch d.next(b) {
            case .data(let n):
                out += String(decoding: UnsafeRawBufferPointer(start: b.base + b.readerIndex, count: n), as: UTF8.self)
                b.consume(n)
            case .done: break loop
            default:
                Issue.record("unexpected step")
                return
            }
        }
        #expect(out == "abc")
        var f = HTTPFields()
        ResponseBodyDecoder.parseTrailers(d.trailerBytes, into: &f)
        #expect(f.pairs.map { "\($0.0)=\($0.1)" } == ["X-Sum=12", "Server-Timing=db;dur=5"])
    }

    @Test func length() {
        #expect(decode(.length(5), "hello", step: 2)! == ("hello", true))
        #expect(decode(.length(6), "hello", step: 2, eof: true) == nil)
    }

    @Test func untilClose() {
        #expect(decode(.untilClose, "abc", step: 1, eof: true)! == ("abc", true))
    }

    @Test(arguments: ["x\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n", "fffffffffffffffffff\r\n", "5\r\nhel"])
    func badChunks(_ wire: String) {
        if let r = decode(.chunked, wire, step: 1, eof: true) {
            Issue.record("accepted \(wire.debugDescription): \(r)")
        }
    }
}

@Suite("Upstream addresses (Caddy's parseUpstreamDialAddress)")
struct UpstreamAddressTests {
    @Test func forms() throws {
        #expect(try UpstreamAddress.parse("whoami:80").map(\.dial) == ["whoami:80"])
        #expect(try UpstreamAddress.parse("whoami").map(\.dial) == ["whoami:80"])
        #expect(try UpstreamAddress.parse("http://nginx").map(\.dial) == ["nginx:80"])
        #expect(try UpstreamAddress.parse("http://127.0.0.1:8080").map(\.dial) == ["127.0.0.1:8080"])
        #expect(try UpstreamAddress.parse("[::1]:9000").map(\.dial) == ["[::1]:9000"])
        #expect(try UpstreamAddress.parse("::1").map(\.dial) == ["[::1]:80"])
        #expect(try UpstreamAddress.parse(":8080").map(\.dial) == ["localhost:8080"])
        #expect(try UpstreamAddress.parse("unix//run/app.sock").map(\.dial) == ["unix//run/app.sock"])
        #expect(try UpstreamAddress.parse("unix/@abstract").first?.endpoint == .unix(path: "@abstract"))
        #expect(try UpstreamAddress.parse("localhost:8001-8003").map(\.dial) == ["localhost:8001", "localhost:8002", "localhost:8003"])
        let tls = try UpstreamAddress.parse("https://example.com")
        #expect(tls.first?.tls == true && tls.first?.dial == "example.com:443")
    }

    @Test(arguments: ["http://a/path", "ftp://x", "host:0", "host:70000", "host:9-1", "unix/", "", "h2c://x:1", "a b:80"])
    func rejected(_ s: String) {
        #expect(throws: UpstreamAddressError.self) { try UpstreamAddress.parse(s) }
    }
}

@Suite("Upstream byte helpers")
struct UpstreamByteHelperTests {
    @Test func tcharTableMatchesTheDefinition() {
        for b in 0...255 {
            var byte = UInt8(b)
            let table = withUnsafeBytes(of: &byte) { FieldBytes.allTchar($0.baseAddress!, 1) }
            let expected = (b < 128) && (Character(UnicodeScalar(UInt8(b))).isLetter || Character(UnicodeScalar(UInt8(b))).isNumber
                || "!#$%&'*+-.^_`|~".utf8.contains(UInt8(b)))
            #expect(table == expected, "byte \(b)")
            #expect(UpstreamBytes.isTchar(UInt8(b)) == expected, "byte \(b)")
        }
    }

    /// NUL, CR and LF at every position of values of every length up to 40 (the eight-byte
    /// words and the tail), next to HTAB, which trips the word test without being refused.
    @Test func nulCRLFFoundAtEveryPosition() {
        for n in 0...40 {
            var clean = [UInt8](repeating: UInt8(ascii: "a"), count: n)
            for i in stride(from: 0, to: n, by: 3) { clean[i] = 0x09 }
            #expect(!clean.withUnsafeBytes { UpstreamBytes.containsNulCRLF($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, n) })
            for i in 0..<n {
                for bad: UInt8 in [0x00, 0x0D, 0x0A] {
                    var v = clean
                    v[i] = bad
                    #expect(v.withUnsafeBytes { UpstreamBytes.containsNulCRLF($0.baseAddress!, n) })
                    v.withUnsafeMutableBytes { UpstreamBytes.sanitizeValue($0.baseAddress!, n) }
                    var want = clean
                    want[i] = 0x20
                    #expect(v == want)
                }
            }
        }
    }

    @Test func fieldNameAndValueChecks() {
        for head in ["HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nConnection\u{1}: x\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nX-Long-Value: 0123456789abcdef\u{0}0123\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain;\rcharset=x\r\n\r\n"] {
            var p = ResponseHeadParser()
            var f = HTTPFields()
            #expect(p.parse(buffer(head), into: &f) == .failure(.badFieldLine), "\(head)")
        }
        var p = ResponseHeadParser()
        var f = HTTPFields()
        let ok = "HTTP/1.1 200 OK\r\nCONTENT-length: 2\r\nX-Tab: a\tb\tc\td\te\tf\tg\th\r\nx~!#$%&'*+-.^_`|: 1\r\n\r\nhi"
        #expect(p.parse(buffer(ok), into: &f) == .complete)
        #expect(p.contentLength == 2)
        #expect(f.pairs.map { $0.0 } == ["CONTENT-length", "X-Tab", "x~!#$%&'*+-.^_`|"])
        #expect(f.entries[0].token == .contentLength && f.entries[2].token == .other)
    }
}
