#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
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

    /// File bodies are read straight into the chunks, continuing a partly filled chunk, and
    /// interleave with handed-out and acknowledged bytes exactly like appended ones.
    @Test func appendFromFileFillsChunksInPlace() throws {
        let data = bytes(2 * QUICChunkPool.chunkSize + 5000, seed: 3)
        var template = Array("/tmp/berth-chain-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        try #require(written == data.count)
        let file = SharedFile(owning: fd)
        let pool = QUICChunkPool()
        var c = QUICBodyChain()
        // A few bytes appended first: the file continues in the same chunk.
        let prefix = bytes(100, seed: 9)
        prefix.withUnsafeBytes { c.append($0, pool: pool) }
        var offset: Int64 = 0
        var got: [UInt8] = []
        while offset < Int64(data.count) {
            let n = c.append(from: file, at: offset, max: 40_000, pool: pool)
            try #require(n > 0)
            #expect(n <= 40_000)
            offset += Int64(n)
            // Hand out and acknowledge as we go, as the data reader and ACKs would.
            got += takeAll(&c)
            c.acknowledge(c.handed / 2, pool: pool)
        }
        #expect(Array(got.dropFirst(100)) == data)
        #expect(Array(got.prefix(100)) == prefix)
        // At end of file nothing is added.
        #expect(c.append(from: file, at: offset, max: 10, pool: pool) == 0)
        c.release(pool: pool)
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
