import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// After warm-up, serving more requests on a connection allocates no new stream objects and
/// grows no storage: every buffer the exchange uses keeps its capacity.
@Suite struct SteadyStateTests {
    private struct Snapshot: Equatable {
        var streams: Int
        var pooled: Int
        var input: Int
        var output: Int
        var stream: [Int]
    }

    private func snapshot(_ h: Harness) -> Snapshot {
        let s = h.conn.pool.last!
        return Snapshot(
            streams: h.conn.streamsAllocated, pooled: h.conn.pooledStreams, input: h.input.capacity,
            output: h.output.capacity,
            stream: [
                s.request.line.capacity, s.request.fields.arena.capacity, s.request.fields.entries.capacity,
                s.response.fields.arena.capacity, s.response.fields.entries.capacity, s.bodyPipe.buffer.capacity,
                s.bodyOut.capacity, s.headBlock.capacity, s.nva.capacity, s.head.cookies.capacity,
                h.conn.live.capacity, h.conn.readyQueue.capacity, h.conn.serviceQueue.capacity,
            ])
    }

    @Test func getRequestsReuseEverything() {
        let h = Harness()
        h.start()
        for _ in 0..<50 {
            h.client.request("GET", "/warm", headers: [("cookie", "a=1"), ("cookie", "b=2"), ("user-agent", "t")])
            h.pump()
        }
        let before = snapshot(h)
        #expect(before.streams == 1)
        for _ in 0..<1000 {
            h.client.request("GET", "/warm", headers: [("cookie", "a=1"), ("cookie", "b=2"), ("user-agent", "t")])
            h.pump()
        }
        #expect(snapshot(h) == before)
        #expect(h.conn.streamsServed == 1050)
    }

    @Test func postRequestsReuseEverything() {
        let h = Harness(.readBody)
        h.start()
        let body = [UInt8](repeating: 0x41, count: 3000)
        for _ in 0..<50 {
            h.client.request("POST", "/up", body: body)
            h.pump()
        }
        let before = snapshot(h)
        for _ in 0..<500 {
            h.client.request("POST", "/up", body: body)
            h.pump()
        }
        #expect(snapshot(h) == before)
    }

    @Test func concurrentBurstsReuseThePool() {
        let h = Harness(.echo)
        h.start()
        for _ in 0..<5 {
            for i in 0..<20 { h.client.request("GET", "/b/\(i)") }
            h.pump()
        }
        let allocated = h.conn.streamsAllocated
        #expect(allocated == 20)
        for _ in 0..<50 {
            for i in 0..<20 { h.client.request("GET", "/b/\(i)") }
            h.pump()
        }
        #expect(h.conn.streamsAllocated == allocated)
    }
}

/// Heap calls per request, counted by `Benchmarks/malloc-counter` (LD_PRELOAD). Skipped unless
/// the test binary runs under it with `MALLOCCOUNT_SHM` set, and alone (other tests would add
/// their allocations):
///
///     make -C Benchmarks/malloc-counter
///     MALLOCCOUNT_SHM=/tmp/h2.mc LD_PRELOAD=$PWD/Benchmarks/malloc-counter/malloccount.so \
///       .build/debug/<Package>PackageTests.xctest --testing-library swift-testing \
///       --filter mallocsPerRequest
///
/// The client side is pre-encoded raw frames, so every count is the server's, nghttp2 included
/// (its per-stream objects come from `NGHTTP2Allocator`'s free lists). Release builds make
/// no heap call per request (measured: 0.009, i.e. 9 in 1000); debug builds make ~2, from
/// unspecialised generic array iteration at -Onone.
@Suite struct MallocCountTests {
    static func counters(_ path: String) -> [UInt64] {
        guard let d = FileManager.default.contents(atPath: path), d.count >= 16 else { return [] }
        return d.withUnsafeBytes { raw in
            let n = Int(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            return (0..<min(n, (d.count - 16) / 8)).map { raw.loadUnaligned(fromByteOffset: 16 + 8 * $0, as: UInt64.self) }
        }
    }

    @Test func mallocsPerRequest() {
        guard let path = ProcessInfo.processInfo.environment["MALLOCCOUNT_SHM"] else { return }
        let h = Harness(.hello)
        _ = h.conn.start()
        h.output.clear()
        let enc = HPACKEncoder()
        let warm = 200
        let measured = 1000
        var frames: [[UInt8]] = []
        for i in 0..<(warm + measured) { frames.append(Raw.headers(UInt32(2 * i + 1), enc.get("/hello"))) }
        h.input.append(Raw.hello())
        _ = h.conn.receive()
        h.output.clear()
        for i in 0..<warm {
            h.input.append(frames[i])
            _ = h.conn.receive()
            h.output.clear()
        }
        let before = MallocCountTests.counters(path)
        for i in warm..<(warm + measured) {
            h.input.append(frames[i])
            _ = h.conn.receive()
            h.output.clear()
        }
        let after = MallocCountTests.counters(path)
        guard before.count >= 6, after.count >= 6 else { return }
        // malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign
        let calls = (0..<6).reduce(UInt64(0)) { $0 + after[$1] - before[$1] }
        let perRequest = Double(calls) / Double(measured)
        print("HTTP/2 heap calls per request (server, nghttp2 included): \(perRequest)")
        #expect(h.conn.streamsServed == warm + measured)
        #if DEBUG
            #expect(perRequest < 3)
        #else
            #expect(perRequest < 0.1)
        #endif
    }
}
