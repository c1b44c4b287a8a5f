import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// A streaming handler that writes `total` bytes in chunks while the stream is writable and
/// waits for `responseWritable()` otherwise.
final class Streamer: ResponseFlowObserver {
    let response: HTTPResponse
    var remaining: Int
    let chunk: Int
    var writableCalls = 0
    var aborted = false
    var maxBuffered = 0
    var stream: HTTP2Stream? { response.protocolSink as? HTTP2Stream }

    init(response: HTTPResponse, total: Int, chunk: Int = 8192) {
        self.response = response
        remaining = total
        self.chunk = chunk
    }

    func start() {
        response.sendHead(contentLength: Int64(remaining))
        response.flowControl?.setFlowObserver(self, for: response)
        pump()
    }

    func pump() {
        let fc = response.flowControl!
        let bytes = [UInt8](repeating: UInt8(ascii: "s"), count: chunk)
        while remaining > 0 && fc.isResponseWritable {
            let n = min(chunk, remaining)
            bytes.withUnsafeBytes { response.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            remaining -= n
            maxBuffered = max(maxBuffered, stream?.bodyOut.readableBytes ?? 0)
        }
        if remaining == 0 && !response.finished { response.finish() }
    }

    func responseWritable() {
        writableCalls += 1
        pump()
    }

    func responseAborted() {
        aborted = true
        if !response.finished { response.finish() }
    }
}

@Suite struct FlowControlTests {
    /// Acknowledges whatever the client received on `id` and pumps until quiet, `rounds` times.
    private func drain(_ h: Harness, _ id: Int32, consumed: inout Int, maxRounds: Int = 500) -> Int {
        var rounds = 0
        while rounds < maxRounds, h.client.responses[id]?.ended != true {
            let got = h.client.responses[id]?.body.count ?? 0
            if got > consumed {
                h.client.consume(id, got - consumed)
                consumed = got
            }
            h.pump()
            rounds += 1
        }
        return rounds
    }

    @Test func oneMebibyteResponseRespectsTheClientWindow() {
        let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let client = H2Client(initialWindow: 16384, manualWindow: true)
        let h = Harness(
            .custom { _, res in
                body.withUnsafeBytes { res.send(body: $0) }
                return .done
            }, client: client)
        h.start()
        let id = h.client.request()
        h.pump()
        // RFC 9113 §6.9: no more DATA than the stream window allows.
        #expect(h.client.responses[id]!.body.count == 16384)
        #expect(!h.client.responses[id]!.ended)
        #expect(h.conn.live.first!.bodyOut.readableBytes == (1 << 20) - 16384)
        var consumed = 0
        let rounds = drain(h, id, consumed: &consumed)
        #expect(rounds > 10)
        let r = h.client.responses[id]!
        #expect(r.ended)
        #expect(r.body == body)
        #expect(r.header("content-length") == "1048576")
        #expect(h.logged.first?.size == 1 << 20)
        #expect(h.conn.activeStreams == 0)
    }

    @Test func streamingHandlerGetsBackPressure() {
        var streamers: [Streamer] = []
        let client = H2Client(initialWindow: 16384, manualWindow: true)
        let h = Harness(
            .custom { _, res in
                let s = Streamer(response: res, total: 1 << 20)
                streamers.append(s)
                s.start()
                return .done
            }, client: client)
        h.start()
        let id = h.client.request()
        h.pump()
        let s = try! #require(streamers.first)
        // Buffered only up to about the window (min 16 KiB) plus one chunk, not 1 MiB.
        #expect(s.remaining > 900_000)
        #expect(s.maxBuffered <= 16384 + 8192)
        var consumed = 0
        _ = drain(h, id, consumed: &consumed)
        #expect(s.remaining == 0)
        #expect(s.writableCalls > 10)
        #expect(s.maxBuffered <= 16384 + 8192)
        #expect(h.client.responses[id]!.body.count == 1 << 20)
        #expect(h.client.responses[id]!.ended)
    }

    @Test func resetUnderStreamingHandlerAborts() {
        var streamers: [Streamer] = []
        let client = H2Client(initialWindow: 16384, manualWindow: true)
        let h = Harness(
            .custom { _, res in
                let s = Streamer(response: res, total: 1 << 20)
                streamers.append(s)
                s.start()
                return .done
            }, client: client)
        h.start()
        let id = h.client.request("GET", "/stream")
        h.pump()
        h.client.reset(id)
        h.pump()
        let s = try! #require(streamers.first)
        #expect(s.aborted)
        #expect(h.conn.handlersInFlight == 0)
        #expect(h.conn.activeStreams == 0)
        #expect(h.logged.map(\.path) == ["/stream"])
        #expect(h.lastAction == .readMore)
    }

    @Test func declaredLengthNotReachedResetsStream() {
        let h = Harness(
            .custom { _, res in
                res.sendHead(contentLength: 100)
                Array("short".utf8).withUnsafeBytes { res.write($0) }
                res.finish()
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.closed)
        #expect(r.closeCode == NGHTTP2_INTERNAL_ERROR.rawValue)
    }

    @Test func unknownLengthStreamEndsWithEmptyDataEndStream() {
        let h = Harness(
            .custom { _, res in
                res.sendHead(contentLength: nil)
                Array("Hello".utf8).withUnsafeBytes { res.write($0) }
                Array(" world".utf8).withUnsafeBytes { res.write($0) }
                res.finish()
                return .done
            })
        h.start()
        let id = h.client.request()
        h.pump()
        let r = h.client.responses[id]!
        #expect(r.bodyString == "Hello world")
        #expect(r.header("content-length") == nil)
        #expect(r.ended && r.closeCode == 0)
    }

    @Test func pendingHandlerFinishesLater() {
        let h = Harness(.pending)
        h.start()
        let id = h.client.request("GET", "/later")
        h.pump()
        #expect(h.client.responses[id]?.status == 0)
        #expect(h.conn.isHandlerPending)
        let res = h.responder.pending[0]
        res.sendHead(contentLength: nil)
        #expect(h.serviceRequests == 1)
        Array("part".utf8).withUnsafeBytes { res.write($0) }
        res.finish()
        h.service()
        let r = h.client.responses[id]!
        #expect(r.status == 200)
        #expect(r.bodyString == "part")
        #expect(r.ended)
        #expect(!h.conn.isHandlerPending)
        #expect(h.logged.map(\.path) == ["/later"])
    }

    @Test func slowReaderMakesTheConnectionWait() {
        // The client never reads: output stops at maxPendingOutput and the driver is told to
        // stop reading (.wait) instead of buffering the whole body.
        let body = [UInt8](repeating: 1, count: 4 << 20)
        let h = Harness(
            .custom { _, res in
                body.withUnsafeBytes { res.send(body: $0) }
                return .done
            }, client: H2Client(initialWindow: 16 << 20)) { $0.limits.maxPendingOutput = 64 * 1024 }
        h.start()
        // Raise the client's connection window too.
        nghttp2_session_set_local_window_size(h.client.session, 0, 0, 16 << 20)
        h.client.request()
        h.input.append(h.client.send())
        h.lastAction = h.conn.receive()
        #expect(h.lastAction == .wait)
        #expect(h.output.readableBytes < 64 * 1024 + 16384 + 64)
        h.pump()
        #expect(h.client.responses[1]?.body.count == 4 << 20)
    }
}

@Suite struct WindowAccountingTests {
    @Test func resetUnreadUploadsDoNotLeakTheConnectionWindow() {
        // Each stream fills its 256 KiB window without being read, then is reset. Five of them
        // would use up the 1 MiB connection window if closed streams kept their bytes.
        var collectors: [BodyCollector] = []
        let h = Harness(
            .custom { req, res in
                if req.pathString == "/read", let src = req.bodySource {
                    let c = BodyCollector(response: res, source: src)
                    collectors.append(c)
                    src.startReading(c)
                }
                return .pending
            }, client: H2Client(initialWindow: 1 << 20))
        h.start()
        nghttp2_session_set_local_window_size(h.client.session, 0, 0, 16 << 20)
        for _ in 0..<6 {
            let id = h.client.request("POST", "/ignore", body: [UInt8](repeating: 1, count: 300_000), endStream: false)
            h.pump()
            h.client.reset(id)
            h.pump()
        }
        for r in h.responder.pending where !r.finished { r.send("x") }
        h.pump()
        let id = h.client.request("POST", "/read", body: [UInt8](repeating: 2, count: 500_000))
        h.pump()
        #expect(collectors.first?.finished == true)
        #expect(collectors.first?.body.count == 500_000)
        #expect(h.client.responses[id]?.bodyString.hasPrefix("got 500000") == true)
    }
}
