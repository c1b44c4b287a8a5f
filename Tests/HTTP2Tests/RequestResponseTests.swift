import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

@Suite struct RequestResponseTests {
    @Test func getHello() {
        let h = Harness()
        h.start()
        let id = h.client.request("GET", "/hello")
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.ended)
        #expect(r.bodyString == "Hello world\n")
        #expect(r.header("content-type") == "text/plain; charset=utf-8")
        #expect(r.header("server") == "Berth")
        #expect(r.header("content-length") == "12")
        #expect(r.header("date")?.count == 29)
        // RFC 9113 §8.3.2: only :status as pseudo-field, names in lower case.
        #expect(r.headers.map(\.0) == ["content-type", "server", "date", "content-length"])
        #expect(h.lastAction == .readMore)
        #expect(h.conn.activeStreams == 0)
    }

    @Test func requestMapsOntoHTTPCore() {
        var seen: (String, String, String?, String, HTTPVersion, [(String, String)], Bool)? = nil
        let h = Harness(
            .custom { req, res in
                let q = req.queryRange.map { r in req.withLineBytes(r) { String(decoding: $0, as: UTF8.self) } }
                seen = (req.methodString, req.pathString, q, req.hostString, req.version, req.fields.pairs, req.bodySource == nil)
                res.sendEmpty()
                return .done
            })
        h.start()
        h.client.request(
            "GET", "/a/b?x=1&y=2", authority: "example.com:8443",
            headers: [("user-agent", "t"), ("cookie", "a=1"), ("cookie", "b=2"), ("accept", "*/*")])
        h.pump()
        let s = try! #require(seen)
        #expect(s.0 == "GET")
        #expect(s.1 == "/a/b")
        #expect(s.2 == "x=1&y=2")
        #expect(s.3 == "example.com")
        #expect(s.4 == .http2)
        // RFC 9113 §8.2.3: cookie crumbs are joined into one field.
        #expect(s.5.map(\.0) == ["user-agent", "accept", "cookie"])
        #expect(s.5.last?.1 == "a=1; b=2")
        #expect(s.6)
    }

    @Test func hostStandsInForMissingAuthority() {
        let h = Harness(.echo)
        h.start()
        let id = h.client.request("GET", "/x", authority: nil, headers: [("host", "h.example")])
        h.pump()
        #expect(h.client.responses[id]?.bodyString == "GET /x host=h.example")
    }

    @Test func headKeepsContentLengthWithoutBody() {
        let h = Harness()
        h.start()
        let id = h.client.request("HEAD", "/")
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.header("content-length") == "12")
        #expect(r.body.isEmpty)
        #expect(r.ended)
    }

    @Test(arguments: [204, 304])
    func noContentStatusesHaveNoBody(status: Int) {
        let h = Harness(
            .custom { _, res in
                res.status = status
                res.send("ignored")
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == status)
        #expect(r.body.isEmpty)
        #expect(r.header("content-length") == nil)
        #expect(r.ended && r.closeCode == 0)
    }

    @Test func connectionSpecificFieldsAreDropped() {
        let h = Harness(
            .custom { _, res in
                res.fields.append(name: "Connection", value: "keep-alive")
                res.fields.append(name: "Keep-Alive", value: "timeout=5")
                res.fields.append(name: "Transfer-Encoding", value: "chunked")
                res.fields.append(name: "Upgrade", value: "h2c")
                res.fields.append(name: "Content-Length", value: "999")
                res.fields.append(name: "X-Mixed-Case", value: "  v\r\nx  ")
                res.fields.append(name: "Bad Name", value: "v")
                res.fields.append(name: "Server", value: "Custom")
                res.send("ok")
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.bodyString == "ok")
        // RFC 9113 §8.2.2: no connection-specific fields; names lower-cased; framing is ours.
        #expect(r.headers.map(\.0) == ["x-mixed-case", "server", "date", "content-length"])
        #expect(r.header("x-mixed-case") == "v  x")
        #expect(r.header("server") == "Custom")
        #expect(r.header("content-length") == "2")
    }

    @Test func emptyResponseForDoneWithoutSending() {
        let h = Harness(.custom { _, _ in .next })
        h.start()
        let id = h.client.request()
        h.pump()
        #expect(h.client.responses[id]?.status == 200)
        #expect(h.client.responses[id]?.header("content-length") == "0")
    }

    @Test func optionsAsteriskAnsweredWithoutRouting() {
        let h = Harness()
        h.start()
        let id = h.client.request("OPTIONS", "*")
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.header("content-length") == "0")
        #expect(r.header("server") == nil)
        #expect(h.responder.calls == 0)
        #expect(h.logged.isEmpty)
    }

    @Test func postBodyThroughRequestBodyReader() {
        let h = Harness(.readBody)
        h.start()
        let body = Array(repeating: UInt8(ascii: "z"), count: 100_000)
        let id = h.client.request("POST", "/upload", headers: [("content-length", "100000")], body: body)
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.bodyString.hasPrefix("got 100000: zzz"))
        #expect(h.responder.readers.first?.finished == true)
        #expect(h.logged.first?.bytesRead == 100_000)
    }

    @Test func bodyArrivingBeforeReadingIsBufferedWithinTheWindow() {
        // The handler starts reading only later: the body waits in the stream (bounded by the
        // stream window, nothing is acknowledged), then is delivered in order.
        var source: (any RequestBodySource)? = nil
        var response: HTTPResponse? = nil
        let h = Harness(
            .custom { req, res in
                source = req.bodySource
                response = res
                return .pending
            }) { $0.settings.initialWindowSize = 65535 }
        h.start()
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let id = h.client.request("POST", "/", body: body)
        h.pump()
        // The client is stuck at the stream window: at most 64 KiB arrived.
        let stream = h.conn.live.first!
        #expect(stream.bodyPipe.buffer.readableBytes <= 65535)
        #expect(stream.bodyPipe.buffer.readableBytes > 0)
        let c = BodyCollector(response: response!, source: source!)
        source!.startReading(c)
        h.service()
        h.pump()
        #expect(c.finished)
        #expect(c.body == body)
        #expect(h.client.responses[id]?.bodyString == "got 200000: " + String(decoding: body.prefix(64), as: UTF8.self))
    }

    @Test func pausedReaderStopsTheClient() {
        let h = Harness(.readBody) { $0.settings.initialWindowSize = 32768 }
        h.start()
        let id = h.client.request("POST", "/", body: Array(repeating: 7, count: 300_000))
        // Pause after the first delivery.
        h.pump(rounds: 2)
        let reader = try! #require(h.responder.readers.first)
        reader.source.pauseReading()
        let before = reader.body.count
        h.pump()
        let stream = h.conn.live.first!
        #expect(stream.bodyPipe.buffer.readableBytes <= 32768)
        #expect(reader.body.count - before <= 32768)
        reader.source.resumeReading()
        h.service()
        h.pump()
        #expect(reader.finished)
        #expect(reader.body.count == 300_000)
        #expect(h.client.responses[id]?.status == 200)
    }

    @Test func expectContinueSendsInformationalHeaders() {
        let h = Harness(.readBody)
        h.start()
        let id = h.client.request("POST", "/", headers: [("expect", "100-continue")], body: Array("abc".utf8))
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.informational == [100])
        #expect(r.bodyString == "got 3: abc")
    }

    @Test func unreadBodyIsDrainedThenTheStreamEndsNormally() {
        let h = Harness()  // hello never reads the body
        h.start()
        let id = h.client.request("POST", "/", body: Array(repeating: 1, count: 10), endStream: false)
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.bodyString == "Hello world\n")
        // Answered before the request ended: the rest of a small body is still taken (and
        // dropped) rather than reset at once, so a client still uploading sees a clean end.
        #expect(!r.closed)
        h.client.sendBody(id, Array(repeating: 2, count: 50_000), end: false)
        h.client.sendBody(id, Array(repeating: 3, count: 1000), end: true)
        h.pump()
        let done = h.client.responses[id]!
        #expect(done.closed && done.closeCode == 0)
        #expect(h.conn.activeStreams == 0)
        #expect(h.lastAction != .flushAndClose)
    }

    @Test func unreadBodyBeyondTheDrainBudgetIsResetWithNoError() {
        let h = Harness()
        h.start()
        let id = h.client.request("POST", "/", body: Array(repeating: 1, count: 10), endStream: false)
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 200 && !r.closed)
        // RFC 9113 §8.1: past the budget, RST_STREAM NO_ERROR asks the client to stop.
        var sent = 0
        for _ in 0..<8 {
            if h.client.responses[id]!.closed { break }
            h.client.sendBody(id, Array(repeating: 2, count: 60_000), end: false)
            sent += 60_000
            h.pump()
        }
        let done = h.client.responses[id]!
        #expect(done.closed && done.closeCode == 0)
        #expect(sent > HTTP2Connection.drainAfterResponse)
        #expect(h.conn.activeStreams == 0)
        #expect(h.lastAction != .flushAndClose)
    }

    @Test func largeRequestHeadGets431() {
        let h = Harness()
        h.start()
        let big = String(repeating: "a", count: 30_000)
        let id = h.client.request("GET", "/", headers: [("x-big", big)])
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.status == 431)
        #expect(r.bodyString == "431 Request Header Fields Too Large")
        #expect(h.responder.calls == 0)
        // The connection survives (RFC 9113 §10.5.1 allows 431 instead of a connection error).
        let id2 = h.client.request("GET", "/")
        h.pump()
        #expect(h.client.responses[id2]?.status == 200)
    }

    @Test func tooManyFieldsGets431() {
        let h = Harness()
        h.start()
        let id = h.client.request("GET", "/", headers: (0..<101).map { ("x-\($0)", "v") })
        h.pump()
        #expect(h.client.responses[id]?.status == 431)
    }

    @Test func abortResetsTheStreamOnly() {
        let h = Harness(
            .custom { _, res in
                res.abort()
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.closed)
        #expect(r.closeCode == NGHTTP2_INTERNAL_ERROR.rawValue)
        #expect(h.lastAction == .readMore)
    }
}
