#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Why an upstream response could not be read (all become `502 Bad Gateway`).
package enum ResponseParseError: Error, Equatable, Sendable {
    case badStatusLine
    case badFieldLine
    case headTooLarge
    /// Content-Length invalid or conflicting (RFC 9112 §6.3 rule 5: a proxy MUST treat it as
    /// an unrecoverable error and discard the message).
    case badContentLength
    /// Chunked framing broken (RFC 9112 §7.1).
    case badChunk
    /// The upstream closed before the message ended.
    case truncated
}

/// How an upstream response body is delimited (RFC 9112 §6.3).
package enum ResponseFraming: Equatable, Sendable {
    /// No body: HEAD, 1xx, 204, 304 (rule 1), or `Content-Length: 0`.
    case none
    /// `Transfer-Encoding` with chunked last (rule 4).
    case chunked
    /// `Content-Length: n` (rule 6).
    case length(Int64)
    /// Until the upstream closes (rules 4 and 8).
    case untilClose
}

/// Incremental, allocation-free HTTP/1.x response head parser (RFC 9112 §4, §5). It consumes
/// complete lines from the connection's input and appends the fields to an `HTTPFields` the
/// caller owns (after any it already holds); `reset()` before each response (1xx responses are followed by another head).
///
/// Leniency is that of a client: bare LF line endings are accepted (§2.2), obs-fold lines are
/// joined with a space (§5.2: a proxy MUST replace obs-fold with SP), a reason phrase may be
/// missing. Field names must be tokens; values must not hold NUL, CR or LF.
package struct ResponseHeadParser: Sendable {
    /// Result of `parse`.
    package enum Result: Equatable, Sendable {
        case needMore
        case complete
        case failure(ResponseParseError)
    }

    /// Largest accepted head (Go's transport allows 10 MB; nobody needs that much).
    package static let maxHeadBytes = 128 * 1024

    package private(set) var status = 0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and higher minor versions).
    package private(set) var minorVersion = 1
    package private(set) var contentLength: Int64? = nil
    /// A Transfer-Encoding field was present.
    package private(set) var hasTransferEncoding = false
    /// The last transfer coding is `chunked`.
    package private(set) var chunked = false
    package private(set) var connectionClose = false
    package private(set) var connectionKeepAlive = false
    package private(set) var connectionUpgrade = false
    private var sawStatusLine = false
    /// A CGI response (RFC 3875 §6.2): no status line, the status in a `Status` field
    /// (200 without one), field names canonicalised as Go's textproto does.
    package private(set) var cgi = false
    /// Fields this head appended (`fields` may already hold others: the exchange parses the
    /// upstream's head straight into the client response's fields).
    private var fieldsAdded = 0
    private var headBytes = 0
    private var scanned = 0

    package init() {}

    /// Forgets the previous head.
    package mutating func reset() { self = ResponseHeadParser() }

    /// Forgets the previous head and expects a CGI response head next.
    package mutating func resetForCGI() {
        self = ResponseHeadParser()
        cgi = true
        sawStatusLine = true
        status = 200
    }

    /// Whether the upstream connection may be reused after this response (RFC 9112 §9.3).
    package var keepAlive: Bool {
        if connectionClose { return false }
        return minorVersion >= 1 || connectionKeepAlive
    }

    /// Body framing for this response to a request with `method` (RFC 9112 §6.3).
    package func framing(isHEAD: Bool) -> ResponseFraming {
        if isHEAD || status < 200 || status == 204 || status == 304 { return .none }
        if hasTransferEncoding { return chunked ? .chunked : .untilClose }
        if let n = contentLength { return n == 0 ? .none : .length(n) }
        return .untilClose
    }

    /// Parses as much of the head as `input` holds, appending fields to `fields`.
    package mutating func parse(_ input: ByteBuffer, into fields: inout HTTPFields) -> Result {
        let base = input.base + input.readerIndex
        let avail = input.readableBytes
        var off = 0
        defer { if off > 0 { input.consume(off) } }
        while true {
            let start = base + off
            let left = avail - off
            guard scanned < left, let hit = memchr(start + scanned, 0x0A, left - scanned) else {
                scanned = left
                return headBytes + left > ResponseHeadParser.maxHeadBytes ? .failure(.headTooLarge) : .needMore
            }
            let lf = start.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            var end = lf
            if end > 0 && start[end - 1] == 0x0D { end -= 1 }
            headBytes += lf + 1
            if headBytes > ResponseHeadParser.maxHeadBytes { return .failure(.headTooLarge) }
            let line = UnsafeRawBufferPointer(start: start, count: end)
            off += lf + 1
            scanned = 0
            if !sawStatusLine {
                if line.isEmpty { continue }  // tolerate leading empty lines
                guard parseStatusLine(line) else { return .failure(.badStatusLine) }
                sawStatusLine = true
                continue
            }
            if line.isEmpty { return .complete }
            if line[0] == 0x20 || line[0] == 0x09 {
                // obs-fold continuation of the previous field.
                guard fieldsAdded > 0 else { return .failure(.badFieldLine) }
                guard appendFold(line, &fields) else { return .failure(.badFieldLine) }
                continue
            }
            guard addField(line, &fields) else { return .failure(fieldError) }
        }
    }

    private var fieldError: ResponseParseError = .badFieldLine

    /// `HTTP/1.x SP 3DIGIT [SP reason]` (RFC 9112 §4).
    private mutating func parseStatusLine(_ l: UnsafeRawBufferPointer) -> Bool {
        guard l.count >= 12, l[0] == 0x48, l[1] == 0x54, l[2] == 0x54, l[3] == 0x50, l[4] == 0x2F, l[5] == 0x31,
            l[6] == 0x2E, l[7] >= 0x30, l[7] <= 0x39, l[8] == 0x20
        else { return false }
        minorVersion = l[7] == 0x30 ? 0 : 1
        var code = 0
        for i in 9..<12 {
            let d = l[i]
            guard d >= 0x30 && d <= 0x39 else { return false }
            code = code * 10 + Int(d - 0x30)
        }
        guard code >= 100, l.count == 12 || l[12] == 0x20 else { return false }
        status = code
        return true
    }

    private mutating func addField(_ line: UnsafeRawBufferPointer, _ fields: inout HTTPFields) -> Bool {
        guard let lb = line.baseAddress, let hit = memchr(lb, 0x3A, line.count) else { return false }
        let colon = lb.distance(to: UnsafeRawPointer(hit))
        guard colon > 0 else { return false }
        if cgi { ResponseHeadParser.canonicalize(UnsafeMutableRawPointer(mutating: lb), colon) }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        // A name `classify` recognises matched one of its (token) spellings byte for byte,
        // up to ASCII case: only unknown names need the tchar check.
        let token = HeaderToken.classify(name)
        guard token != .other || FieldBytes.allTchar(lb, colon) else { return false }
        var vs = colon + 1, ve = line.count
        while vs < ve, line[vs] == 0x20 || line[vs] == 0x09 { vs += 1 }
        while ve > vs, line[ve - 1] == 0x20 || line[ve - 1] == 0x09 { ve -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[vs..<ve])
        // The line holds no LF (it ends at the first one); NUL and CR are refused.
        if UpstreamBytes.containsNulCRLF(lb + vs, ve - vs) { return false }
        switch token {
        case .contentLength:
            guard let n = UpstreamBytes.parseContentLength(value) else {
                fieldError = .badContentLength
                return false
            }
            if let old = contentLength, old != n {
                fieldError = .badContentLength
                return false
            }
            contentLength = n
        case .transferEncoding:
            hasTransferEncoding = true
            var last: UnsafeRawBufferPointer? = nil
            UpstreamBytes.forEachListElement(value) { last = $0 }
            if let l = last { chunked = ASCII.equalsLowercase(l, "chunked") }
        case .other where cgi && colon == 6 && ASCII.equalsLowercase(name, "status"):
            // `Status: 404 Not Found` (Caddy's client.go: the number before the first space).
            let v = Array(value)
            let digits = v.prefix { $0 != 0x20 }
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                fieldError = .badStatusLine
                return false
            }
            let code = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard (100...999).contains(code) else {
                fieldError = .badStatusLine
                return false
            }
            status = code
        case .connection:
            UpstreamBytes.forEachListElement(value) { el in
                if ASCII.equalsLowercase(el, "close") { connectionClose = true }
                if ASCII.equalsLowercase(el, "keep-alive") { connectionKeepAlive = true }
                if ASCII.equalsLowercase(el, "upgrade") { connectionUpgrade = true }
            }
        default:
            break
        }
        fields.append(span: UnsafeRawBufferPointer(rebasing: line[0..<ve]), nameLength: colon, valueOffset: vs, token: token)
        fieldsAdded += 1
        return true
    }

    /// Go's `CanonicalMIMEHeaderKey` in place: upper case at the start and after each `-`,
    /// lower case elsewhere; names with bytes outside tchar are left alone.
    static func canonicalize(_ p: UnsafeMutableRawPointer, _ n: Int) {
        for i in 0..<n where !UpstreamBytes.isTchar(p.load(fromByteOffset: i, as: UInt8.self)) { return }
        var upper = true
        for i in 0..<n {
            var c = p.load(fromByteOffset: i, as: UInt8.self)
            if upper && c >= 0x61 && c <= 0x7A { c -= 0x20 } else if !upper && c >= 0x41 && c <= 0x5A { c += 0x20 }
            p.storeBytes(of: c, toByteOffset: i, as: UInt8.self)
            upper = c == 0x2D
        }
    }

    /// Joins an obs-fold line to the last field with one SP (RFC 9112 §5.2).
    private mutating func appendFold(_ line: UnsafeRawBufferPointer, _ fields: inout HTTPFields) -> Bool {
        var s = 0, e = line.count
        while s < e, line[s] == 0x20 || line[s] == 0x09 { s += 1 }
        while e > s, line[e - 1] == 0x20 || line[e - 1] == 0x09 { e -= 1 }
        for b in line[s..<e] where b == 0 || b == 0x0D { return false }
        let i = fields.count - 1
        var joined: [UInt8] = fields.withField(i) { _, v in Array(v) }
        if s < e {
            joined.append(0x20)
            joined.append(contentsOf: line[s..<e])
        }
        joined.withUnsafeBytes { fields.replaceValue(at: i, with: $0) }
        return true
    }
}

/// Byte helpers shared by the upstream parsers (the HTTP/1 server's are module-internal).
package enum UpstreamBytes {
    /// RFC 9110 §5.6.2 tchar (`!#$%&'*+-.^_`|~`, DIGIT, ALPHA) as two 64-bit masks: one
    /// shift and test per byte instead of a chain of range compares.
    @inline(__always)
    package static func isTchar(_ b: UInt8) -> Bool {
        if b < 64 { return (0x03ff_6cfa_0000_0000 as UInt64) >> UInt64(b) & 1 != 0 }
        if b < 128 { return (0x57ff_ffff_c7ff_fffe as UInt64) >> UInt64(b &- 64) & 1 != 0 }
        return false
    }

    /// True when the `count` bytes at `p` hold a NUL, CR or LF (never allowed in a field
    /// value). Eight bytes at a time: a word without any byte below 0x0E (the "has less
    /// than" bit trick, exact for existence) cannot hold one; a word that trips the test
    /// (HTAB does) is rechecked byte by byte.
    @inline(__always)
    package static func containsNulCRLF(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var k = 0
        while k &+ 8 <= count {
            let x = p.loadUnaligned(fromByteOffset: k, as: UInt64.self)
            if (x &- ones &* 0x0E) & ~x & highs != 0 {
                for i in k..<(k &+ 8) {
                    let b = p.load(fromByteOffset: i, as: UInt8.self)
                    if b == 0 || b == 0x0D || b == 0x0A { return true }
                }
            }
            k &+= 8
        }
        while k < count {
            let b = p.load(fromByteOffset: k, as: UInt8.self)
            if b == 0 || b == 0x0D || b == 0x0A { return true }
            k &+= 1
        }
        return false
    }

    /// Replaces NUL, CR and LF in the `count` bytes at `p` by SP (a value being forwarded).
    @inline(__always)
    package static func sanitizeValue(_ p: UnsafeMutableRawPointer, _ count: Int) {
        guard containsNulCRLF(UnsafeRawPointer(p), count) else { return }
        for i in 0..<count {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            if b == 0 || b == 0x0D || b == 0x0A { p.storeBytes(of: 0x20, toByteOffset: i, as: UInt8.self) }
        }
    }

    /// `1*DIGIT` without sign or spaces, at most 18 digits (RFC 9110 §8.6).
    package static func parseContentLength(_ v: UnsafeRawBufferPointer) -> Int64? {
        guard !v.isEmpty, v.count <= 18 else { return nil }
        var n: Int64 = 0
        for b in v {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + Int64(b - 0x30)
        }
        return n
    }

    /// Calls `body` with each non-empty element of a comma-separated list, OWS trimmed
    /// (RFC 9110 §5.6.1).
    package static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var i = 0
        let n = value.count
        while i < n {
            var s = i
            while i < n && value[i] != 0x2C { i += 1 }
            var e = i
            while s < e && (value[s] == 0x20 || value[s] == 0x09) { s += 1 }
            while e > s && (value[e - 1] == 0x20 || value[e - 1] == 0x09) { e -= 1 }
            if e > s { body(UnsafeRawBufferPointer(rebasing: value[s..<e])) }
            i += 1
        }
    }
}
