import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

@Suite struct LifecycleTests {
    @Test func manyConcurrentStreams() {
        let h = Harness(.echo)
        h.start()
        var ids: [Int32] = []
        for i in 0..<100 { ids.append(h.client.request("GET", "/s/\(i)")) }
        h.pump()
        for (i, id) in ids.enumerated() {
            #expect(h.client.responses[id]?.bodyString == "GET /s/\(i) host=example.com")
        }
        #expect(h.logged.count == 100)
        #expect(h.conn.activeStreams == 0)
        #expect(h.conn.streamsServed == 100)
        // All 100 were in flight at once, but the pool keeps only `streamPoolSize`.
        #expect(h.conn.pooledStreams == 32)
    }

    @Test func concurrentPendingHandlersCompleteInAnyOrder() {
        let h = Harness(.pending)
        h.start()
        let ids = (0..<10).map { h.client.request("GET", "/p/\($0)") }
        h.pump()
        #expect(h.responder.pending.count == 10)
        #expect(h.conn.handlersInFlight == 10)
        for (k, res) in h.responder.pending.enumerated().reversed() {
            var t = "r\(k)"
            t.withUTF8 { res.send(body: UnsafeRawBufferPointer($0)) }
        }
        h.service()
        for (k, id) in ids.enumerated() { #expect(h.client.responses[id]?.bodyString == "r\(k)") }
        #expect(h.conn.handlersInFlight == 0)
    }

    @Test func accessLogPerFinishedStream() {
        let h = Harness(.readBody)
        h.start()
        h.client.request("POST", "/a", body: Array("12345".utf8))
        h.client.request("GET", "/b")
        h.pump()
        let byPath = Dictionary(uniqueKeysWithValues: h.logged.map { ($0.path, $0) })
        #expect(byPath["/a"]?.status == 200)
        #expect(byPath["/a"]?.bytesRead == 5)
        #expect(byPath["/b"]?.bytesRead == 0)
        #expect(byPath["/b"]?.size == Int64("no body".utf8.count))
    }

    @Test func gracefulShutdownSendsTwoGoAways() {
        let h = Harness(.pending)
        h.start()
        let id1 = h.client.request("GET", "/1")
        let id3 = h.client.request("GET", "/3")
        h.pump()
        #expect(h.responder.pending.count == 2)
        h.lastAction = h.conn.beginGracefulShutdown()
        #expect(h.conn.state == .shutdownNotified)
        h.pump()
        // RFC 9113 §6.8: first GOAWAY with 2^31-1, then (after the PING round trip) the last
        // stream actually processed.
        #expect(h.client.goAways.count == 2)
        #expect(h.client.goAways.first?.lastStreamID == Int32.max)
        #expect(h.client.goAways.last?.lastStreamID == id3)
        #expect(h.client.goAways.allSatisfy { $0.code == 0 })
        #expect(h.conn.state == .draining)
        // In-flight streams finish normally.
        h.responder.pending[0].send("one")
        h.service()
        #expect(h.client.responses[id1]?.bodyString == "one")
        #expect(h.lastAction != .flushAndClose && h.lastAction != .close)
        h.responder.pending[1].send("three")
        h.service()
        #expect(h.client.responses[id3]?.bodyString == "three")
        #expect(h.lastAction == .flushAndClose || h.lastAction == .close)
        #expect(h.conn.state == .closed)
        #expect(h.conn.sentGoAway == HTTP2GoAway(lastStreamID: id3, errorCode: .noError))
    }

    @Test func gracefulShutdownOnIdleConnectionCloses() {
        let h = Harness()
        h.start()
        h.client.request()
        h.pump()
        let action = h.conn.beginGracefulShutdown()
        #expect(action == .flushAndClose)
        h.client.receive(h.drainServer())
        #expect(h.client.goAways.last?.lastStreamID == 1)
        #expect(h.client.goAways.last?.code == 0)
    }

    @Test func handlerConnectionCloseStartsGracefulShutdown() {
        let h = Harness(
            .custom { _, res in
                res.closeConnection = true
                res.send("bye")
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        #expect(h.client.responses[id]?.bodyString == "bye")
        #expect(h.client.goAways.last?.lastStreamID == id)
        #expect(h.conn.state == .closed)
    }

    @Test func timeouts() {
        let h = Harness()
        #expect(h.conn.timeout?.kind == .preface)
        h.start()
        let idle = try! #require(h.conn.timeout)
        #expect(idle.kind == .idle)
        #expect(idle.milliseconds == 300_000)
        let id = h.client.request()
        h.pump()
        #expect(h.client.responses[id]?.status == 200)
        // A finished stream starts a new idle period.
        #expect(h.conn.timeout?.kind == .idle)
        #expect(h.conn.timeout != idle)
        let action = h.conn.timedOut()
        #expect(action == .flushAndClose)
        h.client.receive(h.drainServer())
        #expect(h.client.goAways.last?.code == 0)
        #expect(h.client.goAways.last?.lastStreamID == id)
        #expect(h.conn.timeout == nil)
    }

    @Test func noTimeoutWhileStreamsAreOpen() {
        let h = Harness(.pending)
        h.start()
        h.client.request()
        h.pump()
        #expect(h.conn.timeout == nil)
    }

    @Test func prefaceTimeoutClosesQuietly() {
        let h = Harness()
        _ = h.conn.start()
        _ = h.drainServer()
        #expect(h.conn.timeout?.kind == .preface)
        #expect(h.conn.timedOut() == .close)
    }

    @Test func h2cPriorKnowledgeFromBytesAlreadyInInput() {
        // HTTP/1 returns .switchToHTTP2 without consuming: the preface and the first request
        // are already in `input` when the HTTP/2 connection starts.
        let h = Harness()
        let id = h.client.request("GET", "/h2c")
        h.input.append(h.client.send())
        h.lastAction = h.conn.start()
        h.pump()
        #expect(h.client.responses[id]?.status == 200)
        #expect(h.client.responses[id]?.bodyString == "Hello world\n")
    }

    @Test func prefaceSplitAcrossReads() {
        let h = Harness()
        let id = h.client.request()
        let bytes = h.client.send()
        _ = h.conn.start()
        for b in bytes {
            h.input.append([b])
            h.lastAction = h.conn.receive()
        }
        h.pump()
        #expect(h.client.responses[id]?.status == 200)
    }

    @Test func notHTTP2ClosesWithoutGoAway() {
        let h = Harness()
        _ = h.conn.start()
        h.input.append(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(h.conn.receive() == .close)
        #expect(h.conn.lastViolation == .badPreface)
        #expect(h.output.isEmpty)
    }

    @Test func peerClosedFailsReaders() {
        let h = Harness(.readBody)
        h.start()
        h.client.request("POST", "/", body: [1, 2, 3], endStream: false)
        h.pump()
        let reader = try! #require(h.responder.readers.first)
        #expect(h.conn.peerClosed() == .close)
        #expect(reader.failure == .connectionClosed)
        #expect(h.conn.isHandlerPending)
        // The handler finishes later; its writes are ignored and the stream is recycled.
        reader.response.send("late")
        #expect(!h.conn.isHandlerPending)
        #expect(h.conn.activeStreams == 0)
        #expect(h.conn.receive() == .close)
    }

    @Test func transportClosedAbortsStreamingHandlers() {
        var streamers: [Streamer] = []
        let h = Harness(
            .custom { _, res in
                let s = Streamer(response: res, total: 1 << 20)
                streamers.append(s)
                s.start()
                return .done
            }, client: H2Client(initialWindow: 16384, manualWindow: true))
        h.start()
        h.client.request()
        h.pump()
        h.conn.transportClosed()
        #expect(streamers.first?.aborted == true)
        #expect(!h.conn.isHandlerPending)
        #expect(h.conn.state == .closed)
    }

    @Test func clientGoAwayEndsConnectionAfterStreams() {
        let h = Harness(.pending)
        h.start()
        let id = h.client.request()
        h.pump()
        nghttp2_submit_goaway(h.client.session, 0, 0, 0, nil, 0)
        h.pump()
        #expect(h.conn.state == .open)
        h.responder.pending[0].send("done")
        h.service()
        #expect(h.client.responses[id]?.bodyString == "done")
        #expect(h.conn.state == .closed)
    }
}

@Suite struct ReadBodyTimeoutTests {
    @Test func stalledUploadTimesOut() {
        let h = Harness(.readBody)
        h.start()
        let id = h.client.request("POST", "/", body: [1, 2, 3], endStream: false)
        h.pump()
        let t = try! #require(h.conn.timeout)
        #expect(t.kind == .readBody)
        #expect(t.milliseconds == 60_000)
        // More body restarts the period.
        h.client.sendBody(id, [4], end: false)
        h.pump()
        #expect(h.conn.timeout?.kind == .readBody)
        #expect(h.conn.timeout != t)
        h.lastAction = h.conn.timedOut()
        h.pump()
        let reader = try! #require(h.responder.readers.first)
        #expect(reader.failure == .timedOut)
        #expect(h.client.responses[id]?.closeCode == NGHTTP2_CANCEL.rawValue)
        #expect(h.conn.state == .open)
        reader.response.send("late")
        #expect(!h.conn.isHandlerPending)
        #expect(h.conn.timeout?.kind == .idle)
    }

    @Test func pausedReaderHasNoTimer() {
        let h = Harness(.readBody)
        h.start()
        h.client.request("POST", "/", body: [1], endStream: false)
        h.pump()
        h.responder.readers[0].source.pauseReading()
        #expect(h.conn.timeout == nil)
    }
}
