internal import CZlib
internal import CZstd
import HTTPCore
import IOCore
import Synchronization

/// A pool of compressors for one coding and level, shared by every event loop. A compressor
/// owns its zlib/zstd state (deflateInit allocates ~256 KiB) and a 16 KiB output buffer, and is
/// reused across responses: the steady state allocates nothing.
package final class CompressorPool: Sendable {
    let coding: ContentCoding
    let level: Int32
    /// At most this many idle compressors are kept.
    static let maxIdle = 64
    private let idle = Mutex<[Compressor]>([])

    init(coding: ContentCoding, level: Int32) {
        self.coding = coding
        self.level = level
        idle.withLock { $0.reserveCapacity(CompressorPool.maxIdle) }
    }

    func acquire() -> Compressor {
        if let c = idle.withLock({ $0.popLast() }) { return c }
        return Compressor(pool: self)
    }

    func release(_ c: Compressor) {
        idle.withLock { list in
            if list.count < CompressorPool.maxIdle { list.append(c) }
        }
    }
}

/// The compressing `ResponseSink` in front of the protocol's sink for one response.
///
/// The decision is Caddy's (`encode.go` responseWriter.init and Write), made when the head
/// is written: compress when the status allows a body (not 1xx/204/206/304), the response has
/// no `Content-Encoding` and no `Cache-Control: no-transform`, it matches the configured
/// response matcher (by default a text-like `Content-Type`; a missing type is sniffed first,
/// as Go does) and its body is longer than `minimum_length` (known length, or the first
/// chunk). Then `Content-Length` and `Accept-Ranges` go, `Content-Encoding` and
/// `Vary: Accept-Encoding` come, and a strong ETag gets `-<coding>` appended. A 304 gets
/// `Vary: Accept-Encoding` too.
///
/// Streaming: data is compressed as it is written, in 16 KiB output chunks; a complete body
/// whose compressed form fits one chunk is sent with a Content-Length, larger ones chunked. HEAD
/// responses get the same head without compressing anything (and without a Content-Length).
package final class Compressor: ResponseSinkDecorator, @unchecked Sendable {
    unowned(unsafe) let pool: CompressorPool
    unowned(unsafe) var handler: EncodeHandler? = nil
    var isHEAD = false
    /// Head not yet sent because the length is unknown until the first body bytes.
    var headPending = false
    /// Compressing this response (decided).
    var active = false
    /// text/event-stream: flush after every write.
    var flushEachWrite = false
    var started = false

    let z: UnsafeMutablePointer<z_stream>?
    let zc: OpaquePointer?
    static let outCapacity = 16 * 1024
    let out: UnsafeMutablePointer<UInt8>

    init(pool: CompressorPool) {
        self.pool = pool
        out = .allocate(capacity: Compressor.outCapacity)
        switch pool.coding {
        case .gzip:
            let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            s.initialize(to: z_stream())
            // windowBits 15 + 16: gzip wrapper; memLevel 8 (zlib's default).
            _ = berth_deflateInit2(s, pool.level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
            z = s
            zc = nil
        case .zstd:
            let c = ZSTD_createCCtx()
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, pool.level)
            // Caddy's zstd encoder uses a 128 KiB window (browser-friendly).
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 17)
            zc = c
            z = nil
        }
    }

    deinit {
        if let z {
            deflateEnd(z)
            z.deinitialize(count: 1)
            z.deallocate()
        }
        if let zc { ZSTD_freeCCtx(zc) }
        out.deallocate()
    }

    var coding: ContentCoding { pool.coding }

    func begin(_ handler: EncodeHandler, isHEAD: Bool) {
        self.handler = handler
        self.isHEAD = isHEAD
        headPending = false
        active = false
        flushEachWrite = false
        started = false
    }

    package func detach(from response: HTTPResponse) {
        if started {
            if let z { deflateReset(z) }
            if let zc { ZSTD_CCtx_reset(zc, ZSTD_reset_session_only) }
        }
        handler = nil
        pool.release(self)
    }

    // MARK: - The decision

    /// Decides for `response` with a body of `length` bytes (nil: unknown) whose first bytes
    /// are `sample`, and edits the head accordingly. Runs the deferred header operations after.
    func decide(_ response: HTTPResponse, length: Int?, sample: UnsafeRawBufferPointer) {
        defer { response.runDeferred() }
        guard let h = handler else { return }
        let status = response.status
        if status == 304 {
            if !Compressor.hasVary(response.fields) { response.fields.append(.vary, "Accept-Encoding") }
            return
        }
        if status < 200 || status == 204 || status == 206 { return }
        guard let n = length, n > h.settings.minimumLength else { return }
        if !response.fields.contains(.contentType), !sample.isEmpty {
            response.fields.append(.contentType, ContentSniffer.detect(sample))
        }
        if response.fields.withValue(.contentEncoding, { !$0.isEmpty }) == true { return }
        if response.fields.withValue(.cacheControl, { EncodeHandler.contains($0, "no-transform") }) == true { return }
        guard h.settings.match.matches(status: status, fields: response.fields) else { return }
        active = true
        response.fields.remove(.contentLength)
        response.fields.remove(.contentEncoding)
        response.fields.append(.contentEncoding, coding == .gzip ? "gzip" : "zstd")
        if !Compressor.hasVary(response.fields) { response.fields.append(.vary, "Accept-Encoding") }
        response.fields.remove(.acceptRanges)
        if let i = response.fields.firstIndex(.etag) { retag(response, i) }
        flushEachWrite = response.fields.withValue(.contentType) { ct in
            ct.count >= 17 && Template.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: ct[0..<17]), "text/event-stream")
        } ?? false
    }

    /// Caddy's hasVaryValue: `Accept-Encoding` among the comma-separated Vary values.
    static func hasVary(_ fields: HTTPFields) -> Bool {
        for i in fields.entries.indices where fields.entries[i].token == .vary {
            let hit = fields.withField(i) { _, v -> Bool in
                var start = 0
                while start <= v.count {
                    var end = start
                    while end < v.count && v[end] != UInt8(ascii: ",") { end += 1 }
                    let r = EncodeHandler.trim(v, start, end)
                    if Template.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: v[r]), "Accept-Encoding") { return true }
                    start = end + 1
                }
                return false
            }
            if hit { return true }
        }
        return false
    }

    /// A strong ETag `"x"` becomes `"x-gzip"` (RFC 9110 §8.8.3.3; Caddy's trick).
    func retag(_ response: HTTPResponse, _ i: Int) {
        let suffix: StaticString = coding == .gzip ? "-gzip\"" : "-zstd\""
        let e = response.fields.entries[i]
        let n = Int(e.valueLength)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n + suffix.utf8CodeUnitCount) { tmp in
            // Copy the value out first: replaceValue appends to the arena the value lives in.
            var keep = 0
            let weakOrEmpty = response.fields.withField(i) { _, v -> Bool in
                if v.isEmpty || (v.count >= 2 && v[0] == UInt8(ascii: "W") && v[1] == UInt8(ascii: "/")) { return true }
                keep = v.last == UInt8(ascii: "\"") ? v.count - 1 : v.count
                for k in 0..<keep { tmp[k] = v[k] }
                return false
            }
            if weakOrEmpty { return }
            for k in 0..<suffix.utf8CodeUnitCount { tmp[keep + k] = suffix.utf8Start[k] }
            response.fields.replaceValue(at: i, with: UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<(keep + suffix.utf8CodeUnitCount)])))
        }
    }

    // MARK: - ResponseSink

    package func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        withExtendedLifetime(self) {
            let sink = response.protocolSink
            decide(response, length: body.count, sample: body)
            if !active {
                sink.sendComplete(response, body: body)
            } else if isHEAD {
                sink.sendHead(response, contentLength: nil)
                sink.finish(response)
            } else {
                compressComplete(response, body, sink)
            }
            response.removeDecorator()
        }
    }

    package func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        if let cl = contentLength {
            decide(response, length: Int(cl), sample: UnsafeRawBufferPointer(start: nil, count: 0))
            startHead(response, contentLength: cl)
        } else {
            headPending = true
        }
    }

    func startHead(_ response: HTTPResponse, contentLength: Int64?) {
        response.protocolSink.sendHead(response, contentLength: active ? nil : contentLength)
    }

    package func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        if headPending {
            if bytes.isEmpty { return }
            headPending = false
            decide(response, length: bytes.count, sample: bytes)
            startHead(response, contentLength: nil)
        }
        if !active {
            response.protocolSink.sendBody(response, bytes)
        } else if !isHEAD {
            compress(response, bytes, final: false)
        }
    }

    package func finish(_ response: HTTPResponse) {
        withExtendedLifetime(self) {
            if headPending {
                headPending = false
                decide(response, length: 0, sample: UnsafeRawBufferPointer(start: nil, count: 0))
                startHead(response, contentLength: nil)
            }
            if active && !isHEAD { compress(response, UnsafeRawBufferPointer(start: nil, count: 0), final: true) }
            response.protocolSink.finish(response)
            response.removeDecorator()
        }
    }

    package func abort(_ response: HTTPResponse) {
        response.protocolSink.abort(response)
    }

    // MARK: - Compression

    /// Compresses a whole body: Content-Length when the output fits one buffer, else chunked.
    func compressComplete(_ response: HTTPResponse, _ body: UnsafeRawBufferPointer, _ sink: any ResponseSink) {
        var headSent = false
        run(body, final: true) { chunk, more in
            if !headSent && !more {
                sink.sendComplete(response, body: chunk)
                headSent = true
                return
            }
            if !headSent {
                sink.sendHead(response, contentLength: nil)
                headSent = true
            }
            if !chunk.isEmpty { sink.sendBody(response, chunk) }
            if !more { sink.finish(response) }
        }
    }

    /// Compresses streamed bytes, sending full output buffers as they fill.
    func compress(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer, final: Bool) {
        let sink = response.protocolSink
        run(bytes, final: final, flush: flushEachWrite) { chunk, _ in
            if !chunk.isEmpty { sink.sendBody(response, chunk) }
        }
    }

    /// Feeds `input` to the coder; `emit(chunk, more)` receives each output buffer, `more`
    /// false on the last one of a final run.
    func run(_ input: UnsafeRawBufferPointer, final: Bool, flush: Bool = false,
             _ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        started = true
        let cap = Compressor.outCapacity
        if let z {
            z.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            z.pointee.avail_in = uInt(input.count)
            let mode = final ? Z_FINISH : (flush ? Z_SYNC_FLUSH : Z_NO_FLUSH)
            while true {
                z.pointee.next_out = out
                z.pointee.avail_out = uInt(cap)
                let rc = deflate(z, mode)
                let produced = cap - Int(z.pointee.avail_out)
                let done: Bool
                if final {
                    done = rc == Z_STREAM_END
                } else {
                    done = z.pointee.avail_in == 0 && z.pointee.avail_out != 0
                }
                if rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR { emit(UnsafeRawBufferPointer(start: out, count: produced), false); return }
                if produced > 0 || (final && done) {
                    emit(UnsafeRawBufferPointer(start: out, count: produced), !(final && done))
                }
                if done { return }
            }
        } else if let zc {
            var inb = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            let mode = final ? ZSTD_e_end : (flush ? ZSTD_e_flush : ZSTD_e_continue)
            while true {
                var outb = ZSTD_outBuffer(dst: out, size: cap, pos: 0)
                let remaining = ZSTD_compressStream2(zc, &outb, &inb, mode)
                if ZSTD_isError(remaining) != 0 { emit(UnsafeRawBufferPointer(start: out, count: outb.pos), false); return }
                let done: Bool
                if final || flush {
                    done = remaining == 0
                } else {
                    done = inb.pos == inb.size
                }
                if outb.pos > 0 || (final && done) {
                    emit(UnsafeRawBufferPointer(start: out, count: outb.pos), !(final && done))
                }
                if done { return }
            }
        }
    }
}

/// Decompression for tests and diagnostics (not on any request path; allocates).
package enum Decompression {
    /// Inflates a gzip stream, or nil when it is invalid.
    package static func gunzip(_ data: [UInt8]) -> [UInt8]? {
        var s = z_stream()
        guard berth_inflateInit2(&s, 15 + 16) == Z_OK else { return nil }
        defer { inflateEnd(&s) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var input = data
        return input.withUnsafeMutableBufferPointer { inb -> [UInt8]? in
            s.next_in = inb.baseAddress
            s.avail_in = uInt(inb.count)
            while true {
                let rc = chunk.withUnsafeMutableBufferPointer { cb -> Int32 in
                    s.next_out = cb.baseAddress
                    s.avail_out = uInt(cb.count)
                    return inflate(&s, Z_NO_FLUSH)
                }
                out += chunk[0..<(16384 - Int(s.avail_out))]
                if rc == Z_STREAM_END { return out }
                if rc != Z_OK { return nil }
            }
        }
    }

    /// Decompresses a zstd frame, or nil when it is invalid.
    package static func unzstd(_ data: [UInt8]) -> [UInt8]? {
        guard let d = ZSTD_createDCtx() else { return nil }
        defer { ZSTD_freeDCtx(d) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        return data.withUnsafeBytes { inb -> [UInt8]? in
            var input = ZSTD_inBuffer(src: inb.baseAddress, size: inb.count, pos: 0)
            while true {
                var produced = 0
                let rc = chunk.withUnsafeMutableBytes { cb -> Int in
                    var o = ZSTD_outBuffer(dst: cb.baseAddress, size: cb.count, pos: 0)
                    let r = ZSTD_decompressStream(d, &o, &input)
                    produced = o.pos
                    return ZSTD_isError(r) != 0 ? -1 : Int(r)
                }
                if rc < 0 { return nil }
                out += chunk[0..<produced]
                if rc == 0 && input.pos == input.size { return out }
                if produced == 0 && input.pos == input.size { return nil }
            }
        }
    }
}
