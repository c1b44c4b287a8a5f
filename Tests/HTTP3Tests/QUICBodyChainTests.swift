import Testing
@testable import HTTP3

@Suite final class QUICBodyChainTests {
    func bytes(_ n: Int, seed: UInt8 = 0) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) } }

    /// Takes everything unsent as one flat array (as nghttp3 would see it through its vecs).
    func takeAll(_ c: inout QUICBodyChain, maxVecs: Int = 16) -> [UInt8] {
        var out: [UInt8] = []
        var vecs = 0
        _ = c.take { p, n in
            if vecs == maxVecs { return false }
            vecs += 1
            out += Array(UnsafeRawBufferPointer(start: p, count: n))
            return true
        }
        return out
    }

    @Test func appendTakeAcknowledgeAcrossChunks() {
        let pool = QUICChunkPool()
        var c = QUICBodyChain()
        let data = bytes(3 * QUICChunkPool.chunkSize + 123)
        data.withUnsafeBytes { c.append($0, pool: pool) }
        #expect(c.count == data.count)
        #expect(c.chunks.count == 4)
        #expect(takeAll(&c) == data)
        #expect(c.unsent == 0)
        #expect(c.handed == data.count)
        // Acknowledging the first chunk and a bit releases exactly one chunk.
        c.acknowledge(QUICChunkPool.chunkSize + 10, pool: pool)
        #expect(c.chunks.count == 3)
        #expect(pool.outstanding == 3)
        c.acknowledge(c.handed, pool: pool)
        #expect(c.count == 0)
        #expect(pool.outstanding == 0)
    }

    @Test func takeStopsAtTheVecLimitAndResumes() {
        let pool = QUICChunkPool()
        var c = QUICBodyChain()
        let data = bytes(5 * QUICChunkPool.chunkSize, seed: 7)
        data.withUnsafeBytes { c.append($0, pool: pool) }
        let first = takeAll(&c, maxVecs: 2)
        #expect(first.count == 2 * QUICChunkPool.chunkSize)
        let rest = takeAll(&c)
        #expect(first + rest == data)
        c.release(pool: pool)
        #expect(pool.outstanding == 0)
    }

    @Test func appendAfterPartialAcknowledgementKeepsBytesInPlace() {
        let pool = QUICChunkPool()
        var c = QUICBodyChain()
        let a = bytes(1000, seed: 1)
        let b = bytes(QUICChunkPool.chunkSize, seed: 2)
        a.withUnsafeBytes { c.append($0, pool: pool) }
        var firstPointer: UnsafeMutableRawPointer? = nil
        _ = c.take { p, _ in
            firstPointer = p
            return true
        }
        c.acknowledge(400, pool: pool)
        b.withUnsafeBytes { c.append($0, pool: pool) }
        // Handed bytes never move: the first chunk is still where it was.
        #expect(c.chunks.first == firstPointer.map { $0 - 0 })
        #expect(takeAll(&c) == b)
        #expect(c.count == 600 + b.count)
        c.acknowledge(c.handed, pool: pool)
        #expect(pool.outstanding == 0)
    }

    @Test func steadyStateReusesChunks() {
        let pool = QUICChunkPool()
        var c = QUICBodyChain()
        let data = bytes(100_000)
        for _ in 0..<50 {
            data.withUnsafeBytes { c.append($0, pool: pool) }
            _ = takeAll(&c)
            c.acknowledge(c.handed, pool: pool)
        }
        #expect(pool.outstanding == 0)
    }
}

@Suite final class QUICConnectionIDTests {
    @Test func equalityCoversEveryByteAndTheLength() {
        var a = [UInt8](repeating: 1, count: 20)
        let k1 = QUICConnectionID(a, count: 20)
        #expect(k1 == QUICConnectionID(a, count: 20))
        #expect(k1 != QUICConnectionID(a, count: 19))
        a[19] = 2
        #expect(k1 != QUICConnectionID(a, count: 20))
        a[19] = 1
        a[9] = 0
        #expect(k1 != QUICConnectionID(a, count: 20))
        var d: [QUICConnectionID: Int] = [:]
        d[k1] = 1
        #expect(d[QUICConnectionID([UInt8](repeating: 1, count: 20), count: 20)] == 1)
    }
}
