import Foundation
import Testing

@testable import HTTP2

@Suite struct FrameScannerTests {
    private func events(_ chunks: [[UInt8]]) -> [HTTP2FrameScanner.Event] {
        var s = HTTP2FrameScanner()
        var out: [HTTP2FrameScanner.Event] = []
        for c in chunks {
            c.withUnsafeBytes { b in
                var off = 0
                while true {
                    let e = s.next(b, &off)
                    if e == .needMore { break }
                    out.append(e)
                    if e == .badPreface { break }
                }
            }
        }
        return out
    }

    @Test func prefaceThenFrames() {
        let bytes = Raw.preface + Raw.settings([(3, 100)]) + Raw.ping() + Raw.data(1, [], endStream: true)
        let e = events([bytes])
        #expect(e.count == 3)
        #expect(e[0] == .frame(HTTP2FrameHeader(length: 6, type: 4, flags: 0, streamID: 0), headerStart: 24))
        #expect(e[1] == .frame(HTTP2FrameHeader(length: 8, type: 6, flags: 0, streamID: 0), headerStart: 39))
        #expect(e[2] == .frame(HTTP2FrameHeader(length: 0, type: 0, flags: 1, streamID: 1), headerStart: 56))
    }

    @Test func everySplitGivesTheSameHeaders() {
        let bytes = Raw.preface + Raw.settings() + Raw.headers(3, [1, 2, 3, 4, 5]) + Raw.rst(3)
        let whole = events([bytes]).compactMap { e -> HTTP2FrameHeader? in
            if case .frame(let h, _) = e { return h }
            return nil
        }
        #expect(whole.count == 3)
        for cut in 1..<bytes.count {
            let split = events([Array(bytes[0..<cut]), Array(bytes[cut...])]).compactMap { e -> HTTP2FrameHeader? in
                if case .frame(let h, _) = e { return h }
                return nil
            }
            #expect(split == whole, "split at \(cut)")
        }
    }

    @Test func oneByteAtATime() {
        let bytes = Raw.preface + Raw.settings() + Raw.headers(1, [9, 9])
        let e = events(bytes.map { [$0] })
        #expect(e.count == 2)
        #expect(e.last == .frame(HTTP2FrameHeader(length: 2, type: 1, flags: 5, streamID: 1), headerStart: 0))
    }

    @Test func badPreface() {
        #expect(events([Array("GET / HTTP/1.1\r\n".utf8)]) == [.badPreface])
        // The mismatch is found even when the preface arrives in pieces.
        #expect(events([Array(Raw.preface[0..<10]), Array("XX".utf8)]) == [.badPreface])
    }

    @Test func padLengthIsReported() {
        let padded = Raw.frame(HTTP2FrameHeader.data, flags: HTTP2FrameHeader.padded, stream: 1, [2, 0, 0])
        let e = events([Raw.preface + padded + Raw.ping()])
        #expect(e.count == 3)
        #expect(e[1] == .padLength(2))
        // Split between the header and the Pad Length byte.
        let bytes = Raw.preface + padded
        let e2 = events([Array(bytes[0..<33]), Array(bytes[33...])])
        #expect(e2.last == .padLength(2))
    }

    @Test func reservedStreamBitIsIgnored() {
        var f = Raw.rst(5)
        f[5] |= 0x80
        let e = events([Raw.preface + f])
        #expect(e == [.frame(HTTP2FrameHeader(length: 4, type: 3, flags: 0, streamID: 5), headerStart: 24)])
    }
}

@Suite struct FloodGuardTests {
    private let second: UInt64 = 1_000_000_000

    @Test func resetRateWindowRolls() {
        var g = HTTP2FloodGuard(limits: HTTP2Limits())
        var t: UInt64 = 5 * second
        for i in 0..<400 {
            _ = g.onFrame(HTTP2FrameHeader(length: 5, type: 1, flags: 5, streamID: UInt32(2 * i + 1)), now: t)
        }
        for _ in 0..<100 { #expect(g.onReset(now: t) == nil) }
        #expect(g.onReset(now: t) == .rapidReset)
        t += second
        var g2 = HTTP2FloodGuard(limits: HTTP2Limits())
        for i in 0..<1000 {
            _ = g2.onFrame(HTTP2FrameHeader(length: 5, type: 1, flags: 5, streamID: UInt32(2 * i + 1)), now: t)
        }
        // 90 per second for 3 seconds, 10% of the streams: fine.
        for s in 0..<3 {
            for _ in 0..<90 { #expect(g2.onReset(now: t + UInt64(s) * second) == nil) }
        }
    }

    @Test func resetRatioNeedsAMinimum() {
        var limits = HTTP2Limits()
        limits.minResetsForRatio = 10
        var g = HTTP2FloodGuard(limits: limits)
        let t: UInt64 = second
        // 10 streams, all reset: not above the minimum.
        for i in 0..<10 {
            _ = g.onFrame(HTTP2FrameHeader(length: 5, type: 1, flags: 5, streamID: UInt32(2 * i + 1)), now: t)
            #expect(g.onReset(now: t) == nil)
        }
        _ = g.onFrame(HTTP2FrameHeader(length: 5, type: 1, flags: 5, streamID: 21), now: t)
        #expect(g.onReset(now: t) == .resetRatio)
    }

    @Test func continuationsCountPerBlock() {
        var g = HTTP2FloodGuard(limits: HTTP2Limits())
        for block in 0..<3 {
            let id = UInt32(2 * block + 1)
            #expect(g.onFrame(HTTP2FrameHeader(length: 10, type: 1, flags: 0, streamID: id), now: 0) == nil)
            for _ in 0..<4 { #expect(g.onFrame(HTTP2FrameHeader(length: 10, type: 9, flags: 0, streamID: id), now: 0) == nil) }
            #expect(g.onFrame(HTTP2FrameHeader(length: 10, type: 9, flags: 4, streamID: id), now: 0) == nil)
        }
        #expect(g.onFrame(HTTP2FrameHeader(length: 10, type: 1, flags: 0, streamID: 7), now: 0) == nil)
        for _ in 0..<5 { _ = g.onFrame(HTTP2FrameHeader(length: 0, type: 9, flags: 0, streamID: 7), now: 0) }
        #expect(g.onFrame(HTTP2FrameHeader(length: 0, type: 9, flags: 0, streamID: 7), now: 0) == .continuationFlood)
        #expect(g.streamsOpened == 4)
    }

    @Test func acksAndEndStreamAreNotFloods() {
        var g = HTTP2FloodGuard(limits: HTTP2Limits())
        for _ in 0..<1000 {
            #expect(g.onFrame(HTTP2FrameHeader(length: 8, type: 6, flags: 1, streamID: 0), now: 0) == nil)
            #expect(g.onFrame(HTTP2FrameHeader(length: 0, type: 4, flags: 1, streamID: 0), now: 0) == nil)
            #expect(g.onFrame(HTTP2FrameHeader(length: 0, type: 0, flags: 1, streamID: 1), now: 0) == nil)
        }
    }
}

@Suite struct AllocatorTests {
    @Test func recyclesBlocksBySizeClass() {
        let a = NGHTTP2Allocator(maxCachedBlocks: 4)
        let p = a.allocate(40)!
        #expect(Int(bitPattern: p) % 16 == 0)
        a.release(p)
        // Same class (33…48 bytes): the same block comes back.
        #expect(a.allocate(48) == p)
        let big = a.allocate(5000)!
        big.storeBytes(of: 0xAB, toByteOffset: 4999, as: UInt8.self)
        a.release(big)
    }

    @Test func reallocKeepsContents() {
        let a = NGHTTP2Allocator()
        let p = a.allocate(10)!
        for i in 0..<10 { p.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        let q = a.reallocate(p, 3000)!
        for i in 0..<10 { #expect(q.load(fromByteOffset: i, as: UInt8.self) == UInt8(i)) }
        let r = a.reallocate(q, 4)!
        #expect(r.load(fromByteOffset: 3, as: UInt8.self) == 3)
        a.release(r)
        a.release(nil)
    }

    @Test func cacheIsBounded() {
        let a = NGHTTP2Allocator(maxCachedBlocks: 2)
        let blocks = (0..<5).map { _ in a.allocate(64)! }
        for b in blocks { a.release(b) }
        let again = (0..<5).map { _ in a.allocate(64)! }
        // Only two came from the free list (last freed first).
        #expect(Set(again.prefix(2)) == Set(blocks.suffix(from: 0).filter { again.prefix(2).contains($0) }))
        #expect(again.prefix(2).allSatisfy { blocks.contains($0) })
        for b in again { a.release(b) }
    }
}
