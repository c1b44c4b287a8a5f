import HTTPCore
import IOCore

/// Byte ranges (RFC 9110 §14) as Go's `http.ServeContent` serves them for Caddy
/// (`parseRange`, `sumRangesSize`, `rangesMIMESize`):
///
/// - `bytes=a-b`, `a-` (to the end), `-n` (the last n bytes); an end past the file is clamped;
///   ranges starting at or after the end are dropped, and if none is left the answer is 416
///   `invalid range: failed to overlap` with `Content-Range: bytes */size` — except for an
///   empty file, which gets a plain 200;
/// - any syntax error, or another unit, is 416 `invalid range`;
/// - when the ranges add up to more than the file, the Range header is ignored (200);
/// - one range: 206 with Content-Range; several: 206 `multipart/byteranges` with a 60-hex
///   boundary, parts in request order, overlaps not merged.
enum ByteRanges {
    enum Parsed {
        case none
        case invalid
        case noOverlap
        /// One range (the common case: no allocation).
        case single(start: Int64, length: Int64)
        case multiple([(start: Int64, length: Int64)])
    }

    static func parse(_ v: UnsafeRawBufferPointer, size: Int64) -> Parsed {
        if v.isEmpty { return .none }
        let prefix: StaticString = "bytes="
        guard v.count >= 6, FSPath.equal(UnsafeRawBufferPointer(rebasing: v[0..<6]), FSPath.staticBytes(prefix)) else {
            return .invalid
        }
        var first: (Int64, Int64)? = nil
        var more: [(start: Int64, length: Int64)] = []
        var noOverlap = false
        var i = 6
        while i <= v.count {
            var end = i
            while end < v.count && v[end] != UInt8(ascii: ",") { end += 1 }
            defer { i = end + 1 }
            let ra = Preconditions.trim(UnsafeRawBufferPointer(rebasing: v[i..<end]))
            if ra.isEmpty {
                if end >= v.count { break }
                continue
            }
            guard let dash = ra.firstIndex(of: UInt8(ascii: "-")) else { return .invalid }
            let startB = Preconditions.trim(UnsafeRawBufferPointer(rebasing: ra[0..<dash]))
            let endB = Preconditions.trim(UnsafeRawBufferPointer(rebasing: ra[(dash + 1)...]))
            var r: (Int64, Int64)
            if startB.isEmpty {
                guard !endB.isEmpty, endB[0] != UInt8(ascii: "-"), var n = parseInt(endB), n >= 0 else { return .invalid }
                if n > size { n = size }
                r = (size - n, n)
            } else {
                guard let s = parseInt(startB), s >= 0 else { return .invalid }
                if s >= size {
                    noOverlap = true
                    if end >= v.count { break }
                    continue
                }
                if endB.isEmpty {
                    r = (s, size - s)
                } else {
                    guard var e = parseInt(endB), s <= e else { return .invalid }
                    if e >= size { e = size - 1 }
                    r = (s, e - s + 1)
                }
            }
            if first == nil {
                first = r
            } else {
                if more.isEmpty { more.append((first!.0, first!.1)) }
                more.append((r.0, r.1))
            }
            if end >= v.count { break }
        }
        guard let f = first else { return noOverlap ? .noOverlap : .none }
        if more.isEmpty { return .single(start: f.0, length: f.1) }
        return .multiple(more)
    }

    /// Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow.
    static func parseInt(_ b: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        var neg = false
        if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) {
            neg = b[i] == UInt8(ascii: "-")
            i += 1
        }
        guard i < b.count else { return nil }
        var v: Int64 = 0
        while i < b.count {
            let c = b[i]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(c - 0x30))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return neg ? -v : v
    }

    /// `bytes a-b/size` into `out`.
    static func appendContentRange(_ out: ByteBuffer, start: Int64, length: Int64, size: Int64) {
        out.append("bytes ")
        out.appendDecimal(Int(start))
        out.append(byte: UInt8(ascii: "-"))
        out.appendDecimal(Int(start + length - 1))
        out.append(byte: UInt8(ascii: "/"))
        out.appendDecimal(Int(size))
    }
}

/// A `multipart/byteranges` body (RFC 9110 §14.6) in Go's `mime/multipart` layout: each part
/// is `--B`, `Content-Range` and `Content-Type` (sorted, Type empty when the file has none),
/// a blank line and the bytes; parts are separated by CRLF; the body ends `\r\n--B--\r\n`.
/// The part heads are built up front (so the exact Content-Length is known); the file bytes
/// are streamed with pread(2) under the protocol's flow control.
final class MultipartRangesBody: ResponseFlowObserver {
    private var segments: [(head: [UInt8], start: Int64, length: Int64)] = []
    private var trailer: [UInt8] = []
    private(set) var totalLength: Int64 = 0
    private let file: SharedFile
    private unowned(unsafe) var response: HTTPResponse? = nil
    private var flow: (any ResponseFlowControl)? = nil
    private var part = 0
    /// -1: head of `part` not yet written; otherwise bytes of the part's range already sent.
    private var sent: Int64 = -1
    private var buffer: UnsafeMutableRawPointer? = nil
    private var keepAlive: MultipartRangesBody? = nil

    /// A fresh boundary: 30 random bytes in lower-case hex, as Go's `randomBoundary`.
    static func boundary() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        let hex: StaticString = "0123456789abcdef"
        var out: [UInt8] = []
        out.reserveCapacity(60)
        for _ in 0..<30 {
            let b = UInt8(truncatingIfNeeded: g.next())
            out.append(hex.utf8Start[Int(b >> 4)])
            out.append(hex.utf8Start[Int(b & 15)])
        }
        return out
    }

    init(file: SharedFile, ranges: [(start: Int64, length: Int64)], contentType: UnsafeRawBufferPointer?, size: Int64,
         boundary: [UInt8]) {
        self.file = file
        let scratch = ByteBuffer(capacity: 256)
        for (k, r) in ranges.enumerated() {
            scratch.clear()
            if k > 0 { scratch.append("\r\n") }
            scratch.append("--")
            scratch.append(boundary)
            scratch.append("\r\nContent-Range: ")
            ByteRanges.appendContentRange(scratch, start: r.start, length: r.length, size: size)
            scratch.append("\r\nContent-Type: ")
            if let ct = contentType { scratch.append(ct) }
            scratch.append("\r\n\r\n")
            let head = scratch.readableArray()
            segments.append((head, r.start, r.length))
            totalLength += Int64(head.count) + r.length
        }
        trailer = Array("\r\n--".utf8) + boundary + Array("--\r\n".utf8)
        totalLength += Int64(trailer.count)
    }

    deinit { buffer?.deallocate() }

    /// Sends the head (with `totalLength`) and the body. HEAD gets the head only.
    func start(_ response: HTTPResponse, isHEAD: Bool) -> HandlerResult {
        response.sendHead(contentLength: totalLength)
        if isHEAD {
            response.finish()
            return .done
        }
        self.response = response
        flow = response.flowControl
        buffer = .allocate(byteCount: FileBodyPump.chunkSize, alignment: 16)
        keepAlive = self
        flow?.setFlowObserver(self, for: response)
        run()
        return keepAlive == nil ? .done : .pending
    }

    private func run() {
        guard let response, let buffer else { return }
        while part <= segments.count {
            if let flow, !flow.isResponseWritable { return }
            if part == segments.count {
                trailer.withUnsafeBytes { response.write($0) }
                part += 1
                break
            }
            let seg = segments[part]
            if sent < 0 {
                seg.head.withUnsafeBytes { response.write($0) }
                sent = 0
                continue
            }
            let left = seg.length - sent
            if left == 0 {
                part += 1
                sent = -1
                continue
            }
            let want = Int(min(left, Int64(FileBodyPump.chunkSize)))
            let n = file.read(into: buffer, count: want, at: seg.start + sent)
            if n <= 0 {
                flow?.abortStreamedResponse(response)
                end()
                return
            }
            sent += Int64(n)
            response.write(UnsafeRawBufferPointer(start: buffer, count: n))
        }
        end()
    }

    private func end() {
        guard let response else { return }
        flow?.setFlowObserver(nil, for: response)
        if !response.finished { response.finish() }
        self.response = nil
        keepAlive = nil
    }

    func responseWritable() { run() }

    func responseAborted() { end() }
}
