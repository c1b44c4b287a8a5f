import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// Every abuse limit ends the connection with GOAWAY (right code, last processed stream) and
/// `.flushAndClose`. Attacks are crafted as raw frames.
@Suite struct AbuseTests {
    private let calm = HTTP2ErrorCode.enhanceYourCalm.rawValue

    /// A harness whose client is raw bytes: the server preface is drained first.
    private func raw(
        _ mode: TestResponder.Mode = .pending, configure: (inout HTTP2Configuration) -> Void = { _ in }
    ) -> Harness {
        let h = Harness(mode, configure: configure)
        _ = h.conn.start()
        _ = h.drainServer()
        return h
    }

    private func expectCut(_ h: Harness, _ action: HTTP2Action, _ v: HTTP2Violation, code: UInt32? = nil) {
        #expect(action == .flushAndClose)
        #expect(h.conn.lastViolation == v)
        #expect(h.conn.state == .closed)
        let g = parseFrames(h.serverBytes).goAway
        #expect(g?.code == (code ?? calm))
        // Nothing is read after the cut.
        h.input.append(Raw.ping())
        #expect(h.conn.receive() == .close)
    }

    @Test func rapidResetInOneRead() {
        let h = raw()
        let enc = HPACKEncoder()
        var bytes = Raw.hello()
        for i in 0..<150 {
            let id = UInt32(2 * i + 1)
            bytes += Raw.headers(id, enc.get()) + Raw.rst(id)
        }
        let action = h.feedRaw(bytes)
        expectCut(h, action, .rapidReset)
        // Streams reset before their handler ran never reach a handler.
        #expect(h.responder.calls == 0)
        // GOAWAY names the last stream nghttp2 processed (the 101st reset is on stream 201,
        // and the frame that crossed the limit is not processed).
        #expect(parseFrames(h.serverBytes).goAway?.last == 201)
    }

    @Test func rapidResetAcrossReadsKeepsHandlerSlots() {
        // Each stream is dispatched, then reset: its handler keeps its slot, so no more than
        // SETTINGS_MAX_CONCURRENT_STREAMS handlers ever run (Go's CVE-2023-44487 fix).
        let h = raw { $0.settings.maxConcurrentStreams = 4 }
        let enc = HPACKEncoder()
        _ = h.feedRaw(Raw.hello())
        for i in 0..<20 {
            let id = UInt32(2 * i + 1)
            _ = h.feedRaw(Raw.headers(id, enc.get()))
            _ = h.feedRaw(Raw.rst(id))
        }
        #expect(h.responder.calls == 4)
        #expect(h.conn.handlersInFlight == 4)
        #expect(h.conn.state == .open)
        for r in h.responder.pending { r.send("late") }
        #expect(h.conn.handlersInFlight == 0)
        #expect(h.conn.activeStreams == 0)
    }

    @Test func resetRatioUnderTheRateLimit() {
        let h = raw()
        let enc = HPACKEncoder()
        _ = h.feedRaw(Raw.hello())
        var action = HTTP2Action.readMore
        for i in 0..<150 {
            h.nowNanos += 20_000_000  // 50 resets per second: under maxResetsPerSecond
            let id = UInt32(2 * i + 1)
            action = h.feedRaw(Raw.headers(id, enc.get()) + Raw.rst(id))
            if action == .flushAndClose { break }
        }
        expectCut(h, action, .resetRatio)
        #expect(h.conn.floodGuard.resetsCounted == 101)
    }

    @Test func maxConcurrentStreamsRefusedBeforeAck() {
        let h = raw { $0.settings.maxConcurrentStreams = 4 }
        let enc = HPACKEncoder()
        var bytes = Raw.hello(ack: false)
        for i in 0..<6 { bytes += Raw.headers(UInt32(2 * i + 1), enc.get()) }
        let action = h.feedRaw(bytes)
        #expect(action == .readMore)
        // RFC 9113 §5.1.2, §8.7: REFUSED_STREAM, safe for the client to retry.
        #expect(parseFrames(h.serverBytes).resets(NGHTTP2_REFUSED_STREAM.rawValue) == [9, 11])
        #expect(h.responder.calls == 4)
        #expect(h.conn.state == .open)
    }

    @Test func exceedingAcknowledgedConcurrencyIsAConnectionError() {
        // Once the client acknowledged SETTINGS_MAX_CONCURRENT_STREAMS, nghttp2 treats another
        // stream as a connection error (RFC 9113 §5.1.2 allows PROTOCOL_ERROR).
        let h = raw { $0.settings.maxConcurrentStreams = 4 }
        let enc = HPACKEncoder()
        var bytes = Raw.hello(ack: true)
        for i in 0..<5 { bytes += Raw.headers(UInt32(2 * i + 1), enc.get()) }
        let action = h.feedRaw(bytes)
        #expect(action == .flushAndClose)
        #expect(parseFrames(h.serverBytes).goAway?.code == NGHTTP2_PROTOCOL_ERROR.rawValue)
    }

    @Test func refusedStreamsCountAsResets() {
        let h = raw { $0.settings.maxConcurrentStreams = 1 }
        let enc = HPACKEncoder()
        var bytes = Raw.hello(ack: false)
        for i in 0..<120 { bytes += Raw.headers(UInt32(2 * i + 1), enc.get()) }
        let action = h.feedRaw(bytes)
        expectCut(h, action, .rapidReset)
    }

    @Test func provokedResetsCount() {
        // "MadeYouReset" (CVE-2025-8671): a WINDOW_UPDATE that overflows the stream window
        // makes the server reset the stream with FLOW_CONTROL_ERROR (RFC 9113 §6.9.1); those
        // resets count like the client's own.
        let h = raw()
        let enc = HPACKEncoder()
        var bytes = Raw.hello()
        for i in 0..<120 {
            let id = UInt32(2 * i + 1)
            bytes += Raw.headers(id, enc.get()) + Raw.frame(HTTP2FrameHeader.windowUpdate, stream: id, [0x7F, 0xFF, 0xFF, 0xFF])
        }
        let action = h.feedRaw(bytes)
        expectCut(h, action, .rapidReset)
    }

    @Test func continuationFlood() {
        let h = raw()
        let block = HPACKEncoder().get()
        var bytes = Raw.hello() + Raw.headers(1, Array(block[0..<2]), endHeaders: false)
        for _ in 0..<6 { bytes += Raw.continuation(1, []) }
        let action = h.feedRaw(bytes)
        expectCut(h, action, .continuationFlood)
        #expect(h.responder.calls == 0)
    }

    @Test func continuationFloodOneFrameAtATime() {
        let h = raw()
        let block = HPACKEncoder().get()
        _ = h.feedRaw(Raw.hello() + Raw.headers(1, Array(block[0..<2]), endHeaders: false))
        var action = HTTP2Action.readMore
        for _ in 0..<6 { action = h.feedRaw(Raw.continuation(1, [0x00])) }
        expectCut(h, action, .continuationFlood)
    }

    @Test func headerBlockTooLargeOnTheWire() {
        let h = raw()
        // Values of '~' are not Huffman-shortened, so the block is ~80 KB on the wire.
        let tilde = String(repeating: "~", count: 20_000)
        let block = HPACKEncoder().get("/", extra: [("x-a", tilde), ("x-b", tilde), ("x-c", tilde), ("x-d", tilde)])
        #expect(block.count > 80_000)
        var bytes = Raw.hello()
        var off = 0
        var first = true
        while off < block.count {
            let end = min(off + 16384, block.count)
            let part = Array(block[off..<end])
            bytes += first ? Raw.headers(1, part, endHeaders: end == block.count) : Raw.continuation(1, part, endHeaders: end == block.count)
            first = false
            off = end
        }
        let action = h.feedRaw(bytes)
        expectCut(h, action, .headerBlockTooLarge)
        #expect(h.responder.calls == 0)
    }

    @Test func hpackBomb() {
        // RFC 7541 §7.3: one 4 KB table entry referenced again and again decodes to far more
        // than the block's size.
        let h = raw()
        var block = HPACKEncoder().get()
        let value = [UInt8](repeating: UInt8(ascii: "~"), count: 4000)
        // Literal with incremental indexing, new name "x-b" (RFC 7541 §6.2.1), value length
        // 4000 as a 7-bit-prefix integer (§5.1): 127, then 3873 = 0xA1 0x1E.
        block += [0x40, 3] + Array("x-b".utf8) + [0x7F, 0xA1, 0x1E] + value
        block += [UInt8](repeating: 0xBE, count: 40)  // indexed field 62, 40 times
        let action = h.feedRaw(Raw.hello() + Raw.headers(1, block))
        expectCut(h, action, .decodedHeadersTooLarge)
        #expect(h.responder.calls == 0)
    }

    @Test func settingsFlood() {
        let h = raw()
        var bytes = Raw.hello()
        for _ in 0..<25 { bytes += Raw.settings() }
        expectCut(h, h.feedRaw(bytes), .settingsFlood)
    }

    @Test func settingsAreFineAtALowRate() {
        let h = raw()
        _ = h.feedRaw(Raw.hello())
        for _ in 0..<50 {
            h.nowNanos += 100_000_000
            #expect(h.feedRaw(Raw.settings()) == .readMore)
        }
        #expect(h.conn.state == .open)
    }

    @Test func pingFlood() {
        let h = raw()
        var bytes = Raw.hello()
        for _ in 0..<101 { bytes += Raw.ping() }
        expectCut(h, h.feedRaw(bytes), .pingFlood)
    }

    @Test func unsentAcksFlood() {
        // The client sends PINGs faster than it reads the ACKs: nghttp2's outbound ACK cap
        // (nghttp2_option_set_max_outbound_ack) fires.
        let h = raw {
            $0.limits.maxPingsPerSecond = 100_000
            $0.limits.maxOutboundAcks = 10
        }
        var bytes = Raw.hello()
        for _ in 0..<50 { bytes += Raw.ping() }
        expectCut(h, h.feedRaw(bytes), .outboundQueueFlood)
    }

    @Test func emptyDataFlood() {
        let h = raw()
        let enc = HPACKEncoder()
        var bytes = Raw.hello() + Raw.headers(1, enc.post(), endStream: false)
        for _ in 0..<101 { bytes += Raw.data(1) }
        expectCut(h, h.feedRaw(bytes), .emptyDataFlood)
    }

    @Test func paddingOnlyDataFlood() {
        let h = raw()
        let enc = HPACKEncoder()
        var bytes = Raw.hello() + Raw.headers(1, enc.post(), endStream: false)
        // PADDED, Pad Length 3, no data (RFC 9113 §6.1).
        for _ in 0..<101 { bytes += Raw.frame(HTTP2FrameHeader.data, flags: HTTP2FrameHeader.padded, stream: 1, [3, 0, 0, 0]) }
        expectCut(h, h.feedRaw(bytes), .emptyDataFlood)
    }

    @Test func protocolErrorDetectedByNghttp2() {
        let h = raw()
        // DATA on stream 0 is a connection error PROTOCOL_ERROR (RFC 9113 §6.1).
        let action = h.feedRaw(Raw.hello() + Raw.data(0, [1, 2, 3]))
        #expect(action == .flushAndClose)
        #expect(parseFrames(h.serverBytes).goAway?.code == NGHTTP2_PROTOCOL_ERROR.rawValue)
    }

    @Test func noLifetimeStreamCap() {
        let h = Harness(.hello)
        h.start()
        for _ in 0..<2000 {
            h.client.request()
            h.pump()
        }
        #expect(h.conn.streamsServed == 2000)
        #expect(h.conn.state == .open)
    }
}
