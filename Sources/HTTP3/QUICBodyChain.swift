#if canImport(Glibc)
import Glibc
#endif
import HTTPCore

/// Fixed-size chunks for response bodies, recycled per endpoint (one loop thread).
///
/// QUIC keeps every sent byte until the peer acknowledges it, since lost STREAM frames are
/// retransmitted from the original buffer (ngtcp2 and nghttp3 hold pointers into it; RFC 9000
/// §13.3). So a body cannot live in a growable buffer that may move: it is kept in chunks that
/// never move, released as ACKs arrive.
final class QUICChunkPool {
    static let chunkSize = 64 * 1024
    private var free: [UnsafeMutableRawPointer] = []
    let maxCached: Int
    /// Chunks handed out and not returned (for tests and metrics).
    private(set) var outstanding = 0

    init(maxCached: Int = 256) {
        self.maxCached = maxCached
        free.reserveCapacity(maxCached)
    }

    deinit { for p in free { Glibc.free(p) } }

    @inline(__always)
    func take() -> UnsafeMutableRawPointer {
        outstanding += 1
        if let p = free.popLast() { return p }
        guard let p = Glibc.malloc(QUICChunkPool.chunkSize) else { fatalError("out of memory") }
        return p
    }

    @inline(__always)
    func give(_ p: UnsafeMutableRawPointer) {
        outstanding -= 1
        if free.count < maxCached { free.append(p) } else { Glibc.free(p) }
    }
}

/// A stream's outgoing body: bytes appended by the handler, handed to nghttp3 in place, and
/// dropped when acknowledged. Layout: `chunks[0]` starts `head` bytes into the first unacked
/// byte; `handed` bytes after it have gone to nghttp3; `count` bytes are held in all.
struct QUICBodyChain {
    private(set) var chunks: [UnsafeMutableRawPointer] = []
    private var head = 0
    /// Bytes held: handed but unacknowledged, plus not yet handed.
    private(set) var count = 0
    /// Bytes given to nghttp3 and not yet acknowledged.
    private(set) var handed = 0

    /// Bytes not yet given to nghttp3.
    var unsent: Int { count - handed }

    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: QUICChunkPool) {
        guard var src = bytes.baseAddress else { return }
        var left = bytes.count
        let size = QUICChunkPool.chunkSize
        while left > 0 {
            let end = head + count
            let used = end - (chunks.count - 1) * size
            if chunks.isEmpty || used == size {
                chunks.append(pool.take())
                continue
            }
            let n = min(left, size - used)
            (chunks[chunks.count - 1] + used).copyMemory(from: src, byteCount: n)
            src += n
            left -= n
            count += n
        }
    }

    /// Reads up to `max` bytes of `file` at `offset` straight into the free tail of the last
    /// chunk (a new one when it is full): file bodies skip the handler's buffer. Returns the
    /// bytes read (0 at end of file, negative on error).
    mutating func append(from file: SharedFile, at offset: Int64, max: Int, pool: QUICChunkPool) -> Int {
        let size = QUICChunkPool.chunkSize
        var used = chunks.isEmpty ? size : head + count - (chunks.count - 1) * size
        if used == size {
            chunks.append(pool.take())
            used = head + count - (chunks.count - 1) * size
        }
        let got = file.read(into: chunks[chunks.count - 1] + used, count: min(max, size - used), at: offset)
        if got > 0 { count += got }
        return got
    }

    /// Fills `vecs` with the next unsent bytes (at most `max` entries) and marks them handed.
    /// Returns the number of entries and bytes.
    mutating func take(into vecs: (UnsafeMutableRawPointer, Int) -> Bool) -> Int {
        let size = QUICChunkPool.chunkSize
        var pos = head + handed
        var total = 0
        while handed < count {
            let i = pos / size
            let off = pos % size
            let n = min(size - off, count - handed)
            if !vecs(chunks[i] + off, n) { break }
            handed += n
            pos += n
            total += n
        }
        return total
    }

    /// `n` handed bytes were acknowledged: chunks wholly before the new head go back.
    mutating func acknowledge(_ n: Int, pool: QUICChunkPool) {
        let k = min(n, handed)
        handed -= k
        count -= k
        head += k
        let size = QUICChunkPool.chunkSize
        if count == 0 {
            for c in chunks { pool.give(c) }
            chunks.removeAll(keepingCapacity: true)
            head = 0
            return
        }
        var drop = 0
        while head >= size && drop < chunks.count {
            head -= size
            drop += 1
        }
        if drop > 0 {
            for i in 0..<drop { pool.give(chunks[i]) }
            chunks.removeFirst(drop)
        }
    }

    /// Returns every chunk (the stream is done, acknowledged or not).
    mutating func release(pool: QUICChunkPool) {
        for c in chunks { pool.give(c) }
        chunks.removeAll(keepingCapacity: true)
        head = 0
        count = 0
        handed = 0
    }
}
