import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

@Suite("HTTP1Connection: timeouts and peer close")
struct TimeoutTests {
    @Test func timerKindsFollowTheExchange() {
        let h = Harness { $0.timeouts.readHeader = .seconds(3) }
        _ = h.conn.start()
        // A fresh connection: the head timer runs from accept.
        #expect(h.conn.timeout?.kind == .readHeader)
        #expect(h.conn.timeout?.milliseconds == 3000)
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.conn.timeout?.kind == .idle)
        #expect(h.conn.timeout?.milliseconds == 300_000)
        h.feed("GET / HT")
        #expect(h.conn.timeout?.kind == .readHeader)
        let t = h.conn.timeout
        h.feed("TP/1.1\r\n")
        #expect(h.conn.timeout == t)  // same head: the deadline is not extended (slowloris)
    }

    @Test func nextPipelinedHeadGetsAFreshTimer() {
        let h = Harness()
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET")
        let t1 = h.conn.timeout
        h.feed(" / HTTP/1.1\r\nHost: x\r\n\r\nGET")
        let t2 = h.conn.timeout
        #expect(t1?.kind == .readHeader && t2?.kind == .readHeader)
        #expect(t1 != t2)
    }

    @Test func idleTimeoutClosesSilently() {
        let h = Harness()
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = h.take()
        #expect(h.conn.timedOut() == .close)
        #expect(h.take() == "")
    }

    @Test func headTimeoutWithNothingReceivedClosesSilently() {
        let h = Harness()
        _ = h.conn.start()
        #expect(h.conn.timedOut() == .close)
        #expect(h.take() == "")
    }

    @Test func partialHeadTimeoutGets408() {
        let h = Harness()
        h.feed("GET / HTTP/1.1\r\nHost: x\r\n")
        #expect(h.conn.timedOut() == .flushAndClose)
        #expect(h.take() == goError("408 Request Timeout"))
        #expect(h.conn.timeout == nil)
        #expect(h.conn.timedOut() == .close)
    }

    @Test func bodyTimeoutWhileDraining() {
        let h = Harness()
        h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        _ = h.take()
        #expect(h.conn.timeout?.kind == .readBody)
        #expect(h.conn.timedOut() == .close)
    }

    @Test func bodyTimeoutWhileReadingGets408() {
        let h = Harness(.readBody)
        h.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        #expect(h.conn.timeout?.kind == .readBody)
        #expect(h.conn.timeout?.milliseconds == 60_000)
        #expect(h.conn.timedOut() == .flushAndClose)
        #expect(h.take() == goError("408 Request Timeout"))
        #expect(h.responder.readers.first?.failure == .timedOut)
    }

    @Test func peerCloseWhenIdleCloses() {
        let h = Harness()
        _ = h.conn.start()
        #expect(h.conn.peerClosed() == .close)
        let g = Harness()
        g.feed("GET / HTTP/1.1\r\nHo")
        #expect(g.conn.peerClosed() == .close)
        #expect(g.take() == "")
    }

    @Test func peerCloseAfterPipelinedRequestsAnswersThemAll() {
        let h = Harness(.pending)
        h.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h.conn.peerClosed() == .wait)
        h.responder.pendingResponses[0].send("one")
        #expect(h.conn.resume() == .wait)
        h.responder.pendingResponses[1].send("two")
        #expect(h.conn.resume() == .flushAndClose)
        #expect(h.take() == echoResponse("one") + echoResponse("two"))
    }

    @Test func callsAfterCloseAreInert() {
        let h = Harness(.pending)
        h.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let r = h.responder.pendingResponses[0]
        r.send("bye")
        #expect(h.conn.resume() == .flushAndClose)
        #expect(h.conn.resume() == .close)
        #expect(h.conn.peerClosed() == .close)
        #expect(h.conn.timedOut() == .close)
        #expect(h.conn.timeout == nil)
    }
}
