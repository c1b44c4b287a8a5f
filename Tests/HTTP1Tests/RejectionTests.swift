import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

/// One malformed request: its bytes, the exact response, and the reason we expect.
struct Rejection: CustomTestStringConvertible, Sendable {
    let name: String
    let request: [UInt8]
    let response: String
    let error: HTTP1Error

    init(_ name: String, _ request: String, _ response: String, _ error: HTTP1Error) {
        self.init(name, Array(request.utf8), response, error)
    }

    init(_ name: String, _ request: [UInt8], _ response: String, _ error: HTTP1Error) {
        self.name = name
        self.request = request
        self.response = response
        self.error = error
    }

    var testDescription: String { name }
}

let unsupportedTE = "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nUnsupported transfer encoding"
let missingHost = goError("400 Bad Request", reason: "missing required Host header")
let malformedHost = goError("400 Bad Request", reason: "malformed Host header")
let invalidName = goError("400 Bad Request", reason: "invalid header name")
let version505 = goError("505 HTTP Version Not Supported", reason: "unsupported protocol version")

let rejections: [Rejection] = [
    // Framing (RFC 9112 §6).
    Rejection("CL+TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", badRequest, .contentLengthWithTransferEncoding),
    Rejection("TE+CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", badRequest, .contentLengthWithTransferEncoding),
    Rejection("CL +2", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab", badRequest, .invalidContentLength),
    Rejection("CL -1", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", badRequest, .invalidContentLength),
    Rejection("CL abc", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL inner space", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL 20 digits", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 00000000000000000001\r\n\r\n", badRequest, .invalidContentLength),
    Rejection("CL differing", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", badRequest, .conflictingContentLength),
    Rejection("TE gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", unsupportedTE, .unsupportedTransferEncoding),
    Rejection("TE identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", unsupportedTE, .unsupportedTransferEncoding),
    Rejection("TE chunked,chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", unsupportedTE, .unsupportedTransferEncoding),
    Rejection("TE gzip,chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", unsupportedTE, .unsupportedTransferEncoding),
    Rejection("TE two lines", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", unsupportedTE, .unsupportedTransferEncoding),
    Rejection("TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", badRequest, .transferEncodingOnHTTP10),
    // Line syntax (RFC 9112 §2.2, §5).
    Rejection("bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", badRequest, .invalidFieldValue),
    Rejection("bare CR ends field", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", badRequest, .invalidFieldValue),
    Rejection("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidTarget),
    Rejection("CR CR LF after request line", "GET / HTTP/1.1\r\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", badRequest, .obsFold),
    Rejection("obs-fold tab", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", badRequest, .obsFold),
    Rejection("space before first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", badRequest, .obsFold),
    Rejection("space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-Foo : y\r\n\r\n", invalidName, .invalidFieldName),
    Rejection("space in name", "GET / HTTP/1.1\r\nHost: x\r\nX Foo: y\r\n\r\n", invalidName, .invalidFieldName),
    Rejection("Host space colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", invalidName, .invalidFieldName),
    Rejection("paren in name", "GET / HTTP/1.1\r\nHost: x\r\nX(: y\r\n\r\n", invalidName, .invalidFieldName),
    Rejection("empty name", "GET / HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n", badRequest, .emptyFieldName),
    Rejection("no colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", badRequest, .missingColon),
    Rejection("no colon with space", "GET / HTTP/1.1\r\nHost: x\r\nNo Colon\r\n\r\n", badRequest, .missingColon),
    Rejection("NUL in value", Array("GET / HTTP/1.1\r\nHost: x\r\nX: a".utf8) + [0] + Array("b\r\n\r\n".utf8), badRequest, .invalidFieldValue),
    Rejection("CTL in value", Array("GET / HTTP/1.1\r\nHost: x\r\nX: a".utf8) + [0x01] + Array("\r\n\r\n".utf8), badRequest, .invalidFieldValue),
    Rejection("DEL in value", Array("GET / HTTP/1.1\r\nHost: x\r\nX: a".utf8) + [0x7F] + Array("\r\n\r\n".utf8), badRequest, .invalidFieldValue),
    // Host (RFC 9112 §3.2).
    Rejection("missing Host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", missingHost, .missingHost),
    Rejection("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", badRequest, .duplicateHost),
    Rejection("Host with space", "GET / HTTP/1.1\r\nHost: local host\r\n\r\n", malformedHost, .malformedHost),
    Rejection("Host with <>", "GET / HTTP/1.1\r\nHost: a<b>\r\n\r\n", malformedHost, .malformedHost),
    Rejection("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", malformedHost, .malformedHost),
    // Request line (RFC 9112 §3).
    Rejection("HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", version505, .unsupportedVersion),
    Rejection("HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", version505, .unsupportedVersion),
    Rejection("HTTP/0.9 explicit", "GET / HTTP/0.9\r\n\r\n", version505, .unsupportedVersion),
    Rejection("HTTP/0.9", "GET /\r\n", badRequest, .http09),
    Rejection("HTTP/1.10", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("trailing space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("tab in target", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidTarget),
    Rejection("method only", "GET\r\nHost: x\r\n\r\n", badRequest, .invalidRequestLine),
    Rejection("method paren", "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidMethod),
    Rejection("bad percent", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidTarget),
    Rejection("short percent", "GET /%4 HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidTarget),
    Rejection("relative target", "GET foo HTTP/1.1\r\nHost: x\r\n\r\n", badRequest, .invalidTarget),
    Rejection("TLS ClientHello", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03], badRequest, .invalidMethod),
    Rejection("long method", String(repeating: "M", count: 33) + " / HTTP/1.1\r\nHost: x\r\n\r\n",
              "HTTP/1.1 405 Method Not Allowed\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", .methodTooLong),
    // Expect (RFC 9110 §10.1.1).
    Rejection("Expect other", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n",
              "HTTP/1.1 417 Expectation Failed\r\nDate: X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", .unsupportedExpectation),
]

@Suite("HTTP1Connection: rejections")
struct RejectionTests {
    @Test(arguments: rejections)
    func rejected(_ r: Rejection) {
        let h = Harness()
        let a = h.feed(r.request)
        #expect(a == .flushAndClose)
        #expect(h.take() == r.response)
        #expect(h.conn.lastError == r.error)
        #expect(h.responder.calls == 0)
        #expect(h.conn.state == .closed)
        // Nothing more is ever parsed.
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .close)
        #expect(h.take() == "")
    }

    /// Every rejection gives the same answer however the bytes are split.
    @Test(arguments: rejections)
    func rejectedAtEverySplit(_ r: Rejection) {
        for cut in 1..<r.request.count {
            let h = Harness()
            var a = h.feed(Array(r.request[0..<cut]))
            if a != .flushAndClose { a = h.feed(Array(r.request[cut...])) }
            #expect(a == .flushAndClose, "cut \(cut)")
            #expect(h.take() == r.response, "cut \(cut)")
        }
    }

    @Test func rejectionAfterGoodPipelinedRequest() {
        let h = Harness()
        let a = h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n")
        #expect(a == .flushAndClose)
        #expect(h.take() == hello + invalidName)
    }

    @Test func identicalDuplicateContentLengthsAreOneValue() {
        let h = Harness(.custom({ req, res in
            #expect(req.fields.pairs.filter { $0.0 == "Content-Length" }.count == 1)
            #expect(req.contentLength == 3)
            res.sendEmpty()
            return .done
        }))
        h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
        #expect(h.responder.calls == 1)
    }

    @Test func headLimitIsExactly20480() {
        func head(total: Int) -> String {
            let base = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
            return "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + String(repeating: "a", count: total - base.utf8.count) + "\r\n\r\n"
        }
        let ok = Harness()
        #expect(head(total: 20480).utf8.count == 20480)
        #expect(ok.feed(head(total: 20480)) == .flush)
        #expect(ok.take() == hello)
        let tooBig = Harness()
        #expect(tooBig.feed(head(total: 20481)) == .flushAndClose)
        #expect(tooBig.take() == goError("431 Request Header Fields Too Large"))
        // Also when the head never ends.
        let endless = Harness()
        #expect(endless.feed("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 10000)) == .readMore)
        #expect(endless.feed(String(repeating: "a", count: 10500)) == .flushAndClose)
        #expect(endless.conn.lastError == .headTooLarge)
    }

    @Test func tooManyFields() {
        var s = "GET / HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<99 { s += "X-\(i): v\r\n" }
        let ok = Harness()
        ok.feed(s + "\r\n")
        #expect(ok.take() == hello)
        let h = Harness()
        #expect(h.feed(s + "X-last: v\r\n\r\n") == .flushAndClose)
        #expect(h.take() == goError("431 Request Header Fields Too Large"))
    }

    @Test func longTargetGets414() {
        let h = Harness { $0.limits.maxTargetLength = 100 }
        let target = "/" + String(repeating: "a", count: 100)
        #expect(h.feed("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
        #expect(h.take() == goError("414 Request URI Too Long"))
        // Exactly at the limit is fine.
        let ok = Harness { $0.limits.maxTargetLength = 100 }
        ok.feed("GET \(target.dropLast()) HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.take() == hello)
        // Detected before the line ends.
        let early = Harness()
        #expect(early.feed("GET /" + String(repeating: "a", count: 17000)) == .flushAndClose)
        #expect(early.conn.lastError == .targetTooLong)
    }

    @Test func longMethodDetectedBeforeLineEnds() {
        let h = Harness()
        #expect(h.feed(String(repeating: "A", count: 17000)) == .flushAndClose)
        #expect(h.conn.lastError == .methodTooLong)
    }

    @Test func http09GetsAnAnswerWithoutWaiting() {
        let h = Harness()
        #expect(h.feed("GET /index.html\r\n") == .flushAndClose)
        #expect(h.take() == badRequest)
    }
}
