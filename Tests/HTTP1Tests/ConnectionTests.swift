import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("HTTP1Connection: persistence, pipelining, target forms")
struct ConnectionTests {
    @Test func simpleGetKeepsAlive() {
        let h = Harness()
        #expect(h.conn.start() == .readMore)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.conn.state == .head)
        #expect(h.feed("GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.responder.calls == 2)
        #expect(h.conn.requestsServed == 2)
    }

    @Test func requestFieldsAreParsed() {
        let h = Harness(.custom({ req, res in
            #expect(req.methodString == "POST")
            #expect(req.method == .POST)
            #expect(req.targetString == "/a/b?x=1&y=%20")
            #expect(req.pathString == "/a/b")
            #expect(req.queryRange.map { String(decoding: req.line[$0], as: UTF8.self) } == "x=1&y=%20")
            #expect(req.hostString == "example.com")
            #expect(req.authorityRange.map { String(decoding: req.line[$0], as: UTF8.self) } == "example.com:8080")
            #expect(req.version == .http1_1)
            // Host is not kept as a field (like Go); the others are, in order, trimmed.
            #expect(req.fields.pairs.map { $0.0 } == ["X-A", "Content-Length", "x-b"])
            #expect(req.fields.value(named: "x-a") == "one  two")
            #expect(req.fields.value(.contentLength) == "0")
            #expect(req.contentLength == 0)
            #expect(req.bodySource == nil)
            res.sendEmpty()
            return .done
        }))
        h.feed("POST /a/b?x=1&y=%20 HTTP/1.1\r\nX-A: \t one  two \t\r\nHost: example.com:8080\r\nContent-Length: 0\r\nx-b:\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
        #expect(h.responder.calls == 1)
    }

    @Test func pipelinedRequestsAnsweredInOrder() {
        let h = Harness(.echo)
        let a = h.feed(
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: b\r\n\r\nDELETE /3?q HTTP/1.1\r\nHost: c\r\n\r\nGET /4 HTTP/1.1\r\nHo")
        #expect(a == .flush)
        #expect(
            h.take()
                == echoResponse("GET /1 host=a")
                + "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 14\r\n\r\n"
                + echoResponse("DELETE /3?q host=c"))
        #expect(h.conn.timeout?.kind == .readHeader)
        #expect(h.feed("st: d\r\n\r\n") == .flush)
        #expect(h.take() == echoResponse("GET /4 host=d"))
    }

    /// The same pipelined stream, cut at every byte boundary, gives the same bytes out.
    @Test func pipelinedSplitAtEveryByte() {
        let stream = Array(
            ("\r\nGET /1 HTTP/1.1\r\nHost: a\r\n\r\n" + "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello"
                + "POST /3 HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"
                + "GET /4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + "GET /5 HTTP/1.1\nHost: e\n\n").utf8)
        let whole = Harness(.echo)
        whole.feed(stream)
        let expected = whole.take()
        #expect(expected.components(separatedBy: "HTTP/1.1 200 OK").count == 6)
        #expect(expected.contains("Connection: keep-alive\r\n\r\nGET /4 host=<nil>"))
        for cut in 0...stream.count {
            let h = Harness(.echo)
            h.feed(Array(stream[0..<cut]))
            h.feed(Array(stream[cut...]))
            #expect(h.take() == expected, "cut at \(cut)")
        }
        let bytewise = Harness(.echo)
        for b in stream { bytewise.feed([b]) }
        #expect(bytewise.take() == expected)
        #expect(bytewise.responder.calls == 5)
    }

    @Test func http10WithoutKeepAliveCloses() {
        let h = Harness()
        #expect(h.feed("GET / HTTP/1.0\r\n\r\n") == .flushAndClose)
        // HTTP/1.0 closes by default: no Connection field (Go sends none either).
        #expect(h.take() == hello)
        #expect(h.conn.state == .closed)
        #expect(h.feed("GET / HTTP/1.0\r\n\r\n") == .close)
        #expect(h.take() == "")
    }

    @Test func http10KeepAliveIsEchoed() {
        let h = Harness(.echo)
        #expect(h.feed("GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == .flush)
        #expect(h.take() == echoResponse("GET /x host=<nil>", connection: "keep-alive"))
        #expect(h.feed("GET /y HTTP/1.0\r\nHost: h\r\n\r\n") == .flushAndClose)
        #expect(h.take() == echoResponse("GET /y host=h"))
    }

    @Test func connectionCloseIsHonoured() {
        let h = Harness()
        let a = h.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(a == .flushAndClose)
        #expect(h.take() == helloWith("close"))
        #expect(h.responder.calls == 1)
    }

    @Test func http11MinorVersionsAnsweredAsHTTP11() {
        let h = Harness()
        #expect(h.feed("GET / HTTP/1.2\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
    }

    @Test func absoluteFormAuthorityWinsOverHost() {
        let h = Harness(.custom({ req, res in
            #expect(req.authorityRange.map { String(decoding: req.line[$0], as: UTF8.self) } == "Example.COM:8080")
            #expect(req.hostString == "Example.COM")
            #expect(req.pathString == "/x")
            #expect(req.targetString == "/x?y=1")
            res.sendEmpty()
            return .done
        }))
        #expect(h.feed("GET http://Example.COM:8080/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n") == .flush)
        #expect(h.take().hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    @Test func absoluteFormWithoutPathGetsSlash() {
        let h = Harness(.echo)
        h.feed("GET https://h.test?q=1 HTTP/1.1\r\nHost: h.test\r\n\r\n")
        #expect(h.take() == echoResponse("GET /?q=1 host=h.test"))
        h.feed("GET HTTP://h2.test HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == echoResponse("GET / host=h2.test"))
    }

    @Test(arguments: [
        "GET ftp://h/x HTTP/1.1", "GET http://user@h/x HTTP/1.1", "GET http:///x HTTP/1.1",
        "GET http:/h/x HTTP/1.1", "GET foo HTTP/1.1", "GET http://h<>/ HTTP/1.1",
    ])
    func badTargetsAreRejected(line: String) {
        let h = Harness()
        #expect(h.feed(line + "\r\nHost: h\r\n\r\n") == .flushAndClose)
        #expect(h.take() == badRequest)
        #expect(h.responder.calls == 0)
    }

    @Test func absoluteFormStillNeedsHostOnHTTP11() {
        let h = Harness()
        h.feed("GET http://h/x HTTP/1.1\r\n\r\n")
        #expect(h.take() == goError("400 Bad Request", reason: "missing required Host header"))
    }

    @Test func optionsAsteriskIsAnsweredDirectly() {
        let h = Harness()
        #expect(h.feed("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: X\r\n\r\n")
        #expect(h.responder.calls == 0)
        #expect(h.logged.isEmpty)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.logged.count == 1)
    }

    @Test func asteriskOnlyForOptions() {
        let h = Harness()
        #expect(h.feed("GET * HTTP/1.1\r\nHost: x\r\n\r\n") == .flushAndClose)
        #expect(h.take() == badRequest)
    }

    @Test func connectAuthorityFormIsRoutedThenClosed() {
        let h = Harness(.echo)
        #expect(h.feed("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n") == .flushAndClose)
        #expect(h.take() == echoResponse("CONNECT example.com:443 host=example.com", connection: "close"))
    }

    @Test func unknownAndLowercaseMethodsAreRouted() {
        let h = Harness(.echo)
        h.feed("FOO / HTTP/1.1\r\nHost: x\r\n\r\nget /l HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == echoResponse("FOO / host=x") + echoResponse("get /l host=x"))
    }

    @Test func leadingEmptyLinesAreIgnored() {
        let h = Harness()
        #expect(h.feed("\r\n\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
        // …also between pipelined requests.
        #expect(h.feed("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
    }

    @Test func bareLFLineEndingsAreAccepted() {
        let h = Harness(.echo)
        #expect(h.feed("GET /lf HTTP/1.1\nHost: lf\nX: y\n\n") == .flush)
        #expect(h.take() == echoResponse("GET /lf host=lf"))
    }

    @Test func emptyHostIsAcceptedWithEmptyAuthority() {
        let h = Harness(.custom({ req, res in
            #expect(req.authorityRange == req.authorityRange.map { $0.lowerBound..<$0.lowerBound })
            #expect(req.authorityRange != nil)
            res.sendEmpty()
            return .done
        }))
        #expect(h.feed("GET / HTTP/1.1\r\nHost:\r\n\r\n") == .flush)
        #expect(h.responder.calls == 1)
    }

    @Test func obsTextInValuesIsAccepted() {
        let h = Harness()
        h.feed(Array("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf".utf8) + [0xC3, 0xA9] + Array("\r\n\r\n".utf8))
        #expect(h.take() == hello)
    }

    @Test func percentZeroAndFragmentInPathAreKept() {
        let h = Harness(.echo)
        h.feed("GET /a%00b#frag?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.take() == echoResponse("GET /a%00b#frag?x=%zz host=x"))
    }

    @Test func nextWithoutResponseGetsEmpty200() {
        let h = Harness(.next)
        h.feed("GET / HTTP/1.1\r\nHost: unknown\r\n\r\n")
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func http2PrefaceIsHandedOff() {
        let h = Harness()
        let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        #expect(h.feed(preface) == .switchToHTTP2)
        #expect(String(decoding: h.input.readableArray(), as: UTF8.self) == preface)
        #expect(h.take() == "")
        // After a first request it is just a bad version.
        let g = Harness()
        g.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = g.take()
        #expect(g.feed(preface) == .flushAndClose)
        #expect(g.take() == goError("505 HTTP Version Not Supported", reason: "unsupported protocol version"))
    }

    @Test func accessLogHookSeesRequestBeforeReset() {
        let h = Harness(.readBody)
        h.feed("POST /log HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        #expect(h.take().hasSuffix("got 3: abc"))
        #expect(h.logged.count == 1)
        #expect(h.logged.first?.path == "/log")
        #expect(h.logged.first?.status == 200)
        #expect(h.logged.first?.bytesRead == 3)
    }
}
