import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("HTTP1Connection: request bodies and 100-continue")
struct BodyTests {
    @Test func contentLengthBodyReadAcrossReads() {
        let h = Harness(.readBody)
        #expect(h.feed("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel") == .readMore)
        #expect(h.conn.timeout?.kind == .readBody)
        let t1 = h.conn.timeout
        #expect(h.feed("lo wor") == .readMore)
        #expect(h.conn.timeout != t1)  // progress re-arms the body timer
        #expect(h.feed("ldGET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == echoResponse("got 11: hello world") + echoResponse("no body"))
        #expect(h.responder.readers.first?.finished == true)
    }

    @Test func chunkedBodySplitAcrossReads() {
        let stream = Array(
            "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=value;other\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Two: 2\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n"
                .utf8)
        let expected = echoResponse("got 11: hello world") + echoResponse("no body")
        for cut in 0...stream.count {
            let h = Harness(.readBody)
            h.feed(Array(stream[0..<cut]))
            h.feed(Array(stream[cut...]))
            #expect(h.take() == expected, "cut \(cut)")
            #expect(h.responder.readers.first?.trailers.map { "\($0.0)=\($0.1)" } == ["X-Trailer=yes", "X-Two=2"])
        }
        let bytewise = Harness(.readBody)
        for b in stream { bytewise.feed([b]) }
        #expect(bytewise.take() == expected)
    }

    @Test func chunkedRequestFieldsSayStreaming() {
        let h = Harness(.custom({ req, res in
            #expect(req.hasStreamingBody)
            #expect(req.contentLength == nil)
            #expect(req.bodySource != nil)
            res.sendEmpty()
            return .done
        }))
        h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        #expect(h.responder.calls == 1)
    }

    @Test(arguments: [
        "fffffffffffffffff\r\n",  // overflow
        "10000000000000000\r\n",  // 2^64
        "4000000000000000\r\n",  // 2^62: larger than we accept
        "5\r\nhelloX\r\n",  // no CRLF after data
        "5\nhello\r\n",  // bare LF after size
        "5\r\nhello\n0\r\n\r\n",  // bare LF after data
        "z\r\n",  // not hex
        "\r\n",  // empty size
        " 5\r\n",  // leading space
        "5;a\u{01}b\r\n",  // CTL in extension
        "5\r\r\n",  // CR CR
        "0\r\nX : y\r\n\r\n",  // bad trailer
        "0\r\nX: y\n\r\n",  // bare LF in trailer
    ])
    func badChunkedBodyGets400AndClose(body: String) {
        let h = Harness(.readBody)
        let a = h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        #expect(a == .flushAndClose)
        #expect(h.take() == badRequest)
        #expect(h.conn.lastError == .invalidChunkedBody)
        #expect(h.responder.readers.first?.failure == .invalidFraming)
        // The handler's late answer is ignored.
        h.responder.readers.first?.response.send("late")
        #expect(h.take() == "")
    }

    @Test func badChunkedBodyWhileDiscardingCloses() {
        let h = Harness()
        let a = h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX")
        #expect(a == .flushAndClose)
        // The bad framing was already buffered when the head went out, so it says close.
        #expect(h.take() == helloWith("close"))
        #expect(h.conn.lastError == .invalidChunkedBody)
    }

    @Test func oversizedTrailersAreRejected() {
        let h = Harness(.readBody) { $0.limits.maxTrailerBytes = 64 }
        let a = h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "a", count: 80))
        #expect(a == .flushAndClose)
        #expect(h.take() == badRequest)
        #expect(h.conn.lastError == .trailersTooLarge)
    }

    @Test func oversizedChunkExtensionIsRejected() {
        let h = Harness(.readBody)
        let a = h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "e", count: 5000))
        #expect(a == .flushAndClose)
        #expect(h.take() == badRequest)
    }

    @Test func unreadSmallBodyIsDiscardedAndConnectionKept() {
        let h = Harness()
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "b", count: 100)) == .flush)
        #expect(h.take() == hello)
        #expect(h.conn.state == .draining)
        #expect(h.conn.timeout?.kind == .readBody)
        #expect(h.feed(String(repeating: "b", count: 900) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.conn.state == .head)
    }

    @Test func unreadChunkedBodyIsDiscarded() {
        let h = Harness()
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.feed("0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take() == hello)
    }

    @Test func unreadLargeBodyClosesTheConnection() {
        let h = Harness()
        let a = h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\nabc")
        #expect(a == .flushAndClose)
        #expect(h.take() == helloWith("close"))
    }

    @Test func unreadLargeChunkedBodyClosesAfterBudget() {
        let h = Harness { $0.limits.maxDiscardBytes = 10 }
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n") == .flush)
        #expect(h.take() == hello)
        #expect(h.feed("6\r\n world\r\n") == .close)
    }

    @Test func largeBodyAlreadyBufferedKeepsConnection() {
        // The whole body arrived with the head: it is discarded at once, nothing to wait for.
        let h = Harness { $0.limits.maxDiscardBytes = 10 }
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") == .flush)
        #expect(h.take() == hello)
    }

    @Test func expectContinueWithReadingHandler() {
        let h = Harness(.readBody)
        #expect(h.feed("PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n") == .flush)
        #expect(h.take() == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(h.feed("data") == .flush)
        #expect(h.take() == echoResponse("got 4: data"))
    }

    @Test func expectContinueWithNonReadingHandlerAnswersAtOnceAndCloses() {
        let h = Harness()
        #expect(h.feed("PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n") == .flushAndClose)
        #expect(h.take() == helloWith("close"))
    }

    @Test func expectContinueWithBodyAlreadySentKeepsAlive() {
        let h = Harness()
        #expect(h.feed("PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata") == .flush)
        #expect(h.take() == hello)
    }

    @Test func expectContinueIgnoredOnHTTP10AndWithoutBody() {
        let h = Harness(.readBody)
        h.feed("PUT /f HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        #expect(h.take() == "")
        h.feed("ok")
        #expect(h.take() == echoResponse("got 2: ok", connection: "keep-alive"))
        let g = Harness(.readBody)
        g.feed("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        #expect(g.take() == echoResponse("no body"))
    }

    @Test func readerCanPauseAndResume() {
        final class Pausing: RequestBodyReader {
            let source: any RequestBodySource
            let response: HTTPResponse
            var got: [UInt8] = []
            init(_ s: any RequestBodySource, _ r: HTTPResponse) {
                source = s
                response = r
            }
            func requestBody(_ bytes: UnsafeRawBufferPointer) {
                got += bytes
                source.pauseReading()
            }
            func requestBodyFinished() { response.send("done") }
            func requestBodyFailed(_ error: RequestBodyError) {}
        }
        var reader: Pausing? = nil
        let h = Harness(.custom({ req, res in
            guard let s = req.bodySource else { return .next }
            reader = Pausing(s, res)
            s.startReading(reader!)
            return .pending
        })) { $0.limits.maxBufferedInput = 8 }
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123") == .readMore)
        #expect(reader?.got == Array("0123".utf8))
        #expect(h.conn.timeout == nil)  // paused: no body timer
        #expect(h.feed("456789abcdef") == .wait)  // over maxBufferedInput while paused
        #expect(reader?.got.count == 4)
        let before = h.serviceRequests
        reader?.source.resumeReading()
        #expect(h.serviceRequests == before + 1)
        #expect(h.conn.resume() == .readMore)
        #expect(String(decoding: reader?.got ?? [], as: UTF8.self) == "0123456789abcdef")
        reader?.source.resumeReading()
        #expect(h.conn.resume() == .readMore)
        #expect(h.feed("ghij") == .readMore)
        #expect(reader?.got.count == 20)
        // The reader paused again; the end is reported once it resumes.
        #expect(h.take() == "")
        reader?.source.resumeReading()
        #expect(h.conn.resume() == .flush)
        #expect(h.take() == echoResponse("done"))
    }

    @Test func peerCloseFailsTheReader() {
        let h = Harness(.readBody)
        h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        #expect(h.conn.peerClosed() == .wait)
        #expect(h.responder.readers.first?.failure == .connectionClosed)
        #expect(h.conn.isHandlerPending)
        h.responder.readers.first?.response.send("partial")
        #expect(h.conn.resume() == .flushAndClose)
        #expect(h.take() == echoResponse("partial", connection: "close"))
    }

    @Test func responseBeforeBodyEndAbandonsTheReader() {
        var collector: BodyCollector? = nil
        let h = Harness(.custom({ req, res in
            guard let s = req.bodySource else { return .next }
            collector = BodyCollector(response: res, source: s)
            collector?.respondOnEnd = false
            s.startReading(collector!)
            res.send("early")
            return .done
        }))
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab") == .flush)
        #expect(collector?.failure == .abandoned)
        #expect(h.take() == echoResponse("early"))
        #expect(h.feed("cdefGET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        // The reader never got bytes: the response ended the exchange before delivery.
        #expect(collector?.body == [])
        #expect(h.take() == "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: 0\r\n\r\n")
    }

    /// A streaming response that started without reading the body: body bytes that arrive
    /// while the response is still streaming are discarded as they come.
    @Test func bodyDiscardedWhileResponseStreams() {
        let h = Harness(.custom({ _, res in
            res.sendHead(contentLength: nil)
            return .pending
        }))
        #expect(h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc") == .flush)
        #expect(h.conn.isHandlerPending)
        #expect(h.conn.timeout?.kind == .readBody)
        #expect(h.feed("defghij") == .flush)  // the head is still unsent by the test driver
        #expect(h.input.isEmpty)
        _ = h.take()
        h.conn.response.finish()
        #expect(h.take() == "0\r\n\r\n")
        #expect(h.conn.resume() == .readMore)
        #expect(h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .flush)
        #expect(h.take().hasPrefix("HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nTransfer-Encoding: chunked"))
    }
}
