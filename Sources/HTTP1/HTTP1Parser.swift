#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// How a request's body is delimited (RFC 9112 §6.3).
package enum BodyFraming: Equatable, Sendable {
    /// No body: neither Content-Length nor Transfer-Encoding, or `Content-Length: 0` (rule 7).
    case none
    /// `Content-Length: n`, n > 0 (rule 6).
    case length(Int64)
    /// `Transfer-Encoding: chunked` (rule 4).
    case chunked
}

/// The form of a request target (RFC 9112 §3.2).
package enum TargetForm: Equatable, Sendable {
    /// `/path?query` (§3.2.1).
    case origin
    /// `http://authority/path?query` (§3.2.2); the authority replaces Host.
    case absolute
    /// `host:port`, CONNECT only (§3.2.3).
    case authority
    /// `*`, OPTIONS only (§3.2.4).
    case asterisk
}

/// An incremental, allocation-free HTTP/1.x request head parser (RFC 9112 §2–§5).
///
/// It works line by line on a connection's input `ByteBuffer`: every complete line is checked
/// and copied into the reused `HTTPRequest` (request-line pieces into `line`, fields into the
/// `fields` arena) and then consumed from the input, so a partial head never needs re-parsing
/// and bad input is rejected as soon as the offending line is complete. A partial line is
/// searched for LF only once per byte (`scanned` remembers how far it got). The driver must
/// only append to the input between calls.
///
/// Line endings: CRLF, or a bare LF (RFC 9112 §2.2: a recipient MAY accept it; Go does). Any
/// other CR is an error.
package struct HTTP1Parser: Sendable {
    /// Where in the head the parser is.
    package enum Phase: Sendable { case requestLine, fields }

    /// Result of one `parse` call.
    package enum Result: Equatable, Sendable {
        /// The head is incomplete; everything complete so far was consumed.
        case needMore
        /// The head is complete and consumed; `request` and the parser's facts are final.
        case complete
        /// The input starts with the HTTP/2 connection preface (RFC 9113 §3.4); nothing was
        /// consumed.
        case http2Preface
        /// The head is invalid.
        case failure(HTTP1Error)
    }

    package internal(set) var phase: Phase = .requestLine
    /// Bytes of the head consumed so far (leading empty lines included).
    package internal(set) var headBytes = 0
    /// Bytes of the current partial line already searched for LF.
    private var scanned = 0

    // Facts gathered from the head (RFC 9112 §6, §9; RFC 9110 §7.2, §10.1.1).
    package internal(set) var targetForm: TargetForm = .origin
    package internal(set) var hostCount = 0
    package internal(set) var fieldLines = 0
    package internal(set) var contentLength: Int64? = nil
    package internal(set) var transferEncodingLines = 0
    package internal(set) var transferEncodingIsChunked = false
    package internal(set) var connectionClose = false
    package internal(set) var connectionKeepAlive = false
    package internal(set) var expectContinue = false
    package internal(set) var expectOther = false
    /// Set by a complete parse.
    package internal(set) var framing: BodyFraming = .none
    /// Whether the connection may persist after this request (RFC 9112 §9.3).
    package internal(set) var keepAlive = true

    package init() {}

    /// Forgets the previous head (storage in the request is reset by its owner).
    package mutating func reset() {
        self = HTTP1Parser()
    }

    /// True once any byte of this head has been consumed.
    @inline(__always) package var hasConsumed: Bool { headBytes > 0 }

    /// Parses as much of a head from `input` as is complete.
    ///
    /// - Parameters:
    ///   - request: reset by the caller before the first call for a head.
    ///   - allowPreface: true on a fresh connection: `PRI * HTTP/2.0` is reported, not rejected.
    package mutating func parse(
        _ input: ByteBuffer, into request: HTTPRequest, limits: HTTP1Limits, allowPreface: Bool = false
    ) -> Result {
        // The buffer is read through one pointer and consumed once per call: every
        // `ByteBuffer` access is a cross-module call with exclusivity checks.
        let base = input.base + input.readerIndex
        let avail = input.readableBytes
        var off = 0
        defer { if off > 0 { input.consume(off) } }
        while true {
            let start = base + off
            let left = avail - off
            var lf = -1
            if scanned < left, let hit = memchr(start + scanned, 0x0A, left - scanned) {
                lf = start.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            if lf < 0 {
                scanned = left
                if let e = checkPartialLine(start, left, limits) { return .failure(e) }
                return .needMore
            }
            let total = lf + 1
            if headBytes + total > limits.maxHeadBytes {
                // RFC 6585 §5 (431), or 414/405 when the request line alone is the problem.
                let longLine = phase == .requestLine && lf > 1
                return .failure(longLine ? classifyLongRequestLine(start, lf, limits) : .headTooLarge)
            }
            var n = lf
            if n > 0 && start[n - 1] == 0x0D { n -= 1 }
            let line = UnsafeRawBufferPointer(start: start, count: n)
            switch phase {
            case .requestLine:
                if n == 0 {
                    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received
                    // before the request-line. They count towards the head limit.
                    advance(&off, total)
                    continue
                }
                if allowPreface && headBytes == 0 && HTTP1Parser.isHTTP2Preface(line) {
                    return .http2Preface
                }
                if let e = parseRequestLine(line, request, limits) { return .failure(e) }
                phase = .fields
            case .fields:
                if n == 0 {
                    advance(&off, total)
                    if let e = finishHead(request) { return .failure(e) }
                    return .complete
                }
                if let e = parseFieldLine(line, request, limits) { return .failure(e) }
            }
            advance(&off, total)
        }
    }

    @inline(__always)
    private mutating func advance(_ off: inout Int, _ n: Int) {
        off += n
        headBytes += n
        scanned = 0
    }

    /// `PRI * HTTP/2.0` (RFC 9113 §3.4), the first line of the h2 prior-knowledge preface.
    static func isHTTP2Preface(_ line: UnsafeRawBufferPointer) -> Bool {
        let s: StaticString = "PRI * HTTP/2.0"
        guard line.count == s.utf8CodeUnitCount, let b = line.baseAddress else { return false }
        return memcmp(b, s.utf8Start, line.count) == 0
    }

    /// Limits on a line that has no LF yet: the head limit, the request-line limit, and a
    /// first byte that cannot start a request (so binary garbage such as a TLS ClientHello is
    /// rejected at once instead of after a timeout).
    private func checkPartialLine(_ start: UnsafeMutablePointer<UInt8>, _ avail: Int, _ limits: HTTP1Limits) -> HTTP1Error? {
        guard avail > 0 else { return nil }
        if phase == .requestLine {
            let b = start[0]
            if !ByteClass.isTchar(b) && b != 0x0D { return .invalidMethod }
            if avail > 1 && b == 0x0D && start[1] != 0x0A { return .invalidMethod }
            let lineLimit = limits.maxMethodLength + limits.maxTargetLength + 12
            if headBytes + avail > limits.maxHeadBytes || avail > lineLimit {
                return classifyLongRequestLine(start, avail, limits)
            }
            return nil
        }
        if headBytes + avail > limits.maxHeadBytes { return .headTooLarge }
        return nil
    }

    /// Which error a request line that blew a limit gets: 405 if the method is the long part
    /// (Caddy), 414 if the target is (RFC 9112 §3), 400 if it is malformed, else 431.
    private func classifyLongRequestLine(_ p: UnsafeMutablePointer<UInt8>, _ n: Int, _ limits: HTTP1Limits) -> HTTP1Error {
        var i = 0
        while i < n && ByteClass.isTchar(p[i]) { i += 1 }
        if i == n || p[i] != 0x20 {
            if i > limits.maxMethodLength { return .methodTooLong }
            return i == n ? .headTooLarge : .invalidMethod
        }
        if i > limits.maxMethodLength { return .methodTooLong }
        var j = i + 1
        while j < n && p[j] != 0x20 { j += 1 }
        if j - (i + 1) > limits.maxTargetLength || j == n { return .targetTooLong }
        return .headTooLarge
    }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3). Exactly one SP
    /// between the parts (the RFC's "MAY accept other whitespace" is not taken: stricter is
    /// safer and matches Go).
    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer, _ request: HTTPRequest, _ limits: HTTP1Limits) -> HTTP1Error? {
        let n = line.count
        guard let raw = line.baseAddress else { return .invalidRequestLine }
        let p = raw.assumingMemoryBound(to: UInt8.self)

        // method = token (RFC 9110 §9.1).
        var i = 0
        while i < n && ByteClass.isTchar(p[i]) { i += 1 }
        if i == 0 { return .invalidMethod }
        if i == n { return .invalidRequestLine }
        if p[i] != 0x20 { return .invalidMethod }
        if i > limits.maxMethodLength { return .methodTooLong }
        let methodLength = i

        // request-target: no CTL, no SP (RFC 9112 §3.2, RFC 3986 §2).
        let ts = i + 1
        var j = ts
        while j < n {
            let b = p[j]
            if b <= 0x20 || b == 0x7F { break }
            j += 1
        }
        let targetLength = j - ts
        if targetLength > limits.maxTargetLength { return .targetTooLong }
        if j == n { return targetLength == 0 ? .invalidRequestLine : .http09 }
        if p[j] != 0x20 { return .invalidTarget }
        if targetLength == 0 { return .invalidRequestLine }

        // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), case-sensitive.
        let v = j + 1
        guard n - v == 8, p[v] == 0x48, p[v + 1] == 0x54, p[v + 2] == 0x54, p[v + 3] == 0x50,
            p[v + 4] == 0x2F, p[v + 6] == 0x2E
        else { return .invalidRequestLine }
        let major = p[v + 5] &- 0x30
        let minor = p[v + 7] &- 0x30
        guard major <= 9, minor <= 9 else { return .invalidRequestLine }
        // RFC 9110 §6.2 / §15.6.6: only major version 1 here; 1.x (x ≥ 2) is answered as 1.1.
        if major != 1 { return .unsupportedVersion }
        request.version = minor == 0 ? .http1_0 : .http1_1

        let method = UnsafeRawBufferPointer(start: p, count: methodLength)
        request.methodRange = request.appendLine(method)
        request.method = HTTPMethod.classify(method)
        return parseTarget(UnsafeRawBufferPointer(start: p + ts, count: targetLength), request)
    }

    /// Classifies and stores the target (RFC 9112 §3.2).
    private mutating func parseTarget(_ t: UnsafeRawBufferPointer, _ request: HTTPRequest) -> HTTP1Error? {
        let n = t.count
        if t[0] == 0x2F {  // origin-form
            guard let pathLength = HTTP1Parser.pathLength(t) else { return .invalidTarget }
            targetForm = .origin
            storeTarget(t, prefixSlash: false, pathLength: pathLength, request)
            return nil
        }
        if n == 1 && t[0] == 0x2A {  // asterisk-form: OPTIONS only (§3.2.4)
            guard request.method == .OPTIONS else { return .invalidTarget }
            targetForm = .asterisk
            let r = request.appendLine(t)
            request.targetRange = r
            request.pathRange = r
            return nil
        }
        if request.method == .CONNECT {  // authority-form: CONNECT only (§3.2.3)
            guard HTTP1Parser.isValidAuthority(t) else { return .invalidTarget }
            targetForm = .authority
            let r = request.appendLine(t)
            request.targetRange = r
            request.pathRange = r.upperBound..<r.upperBound
            request.authorityRange = r
            return nil
        }
        return parseAbsoluteForm(t, request)
    }

    /// absolute-form (RFC 9112 §3.2.2): only `http` and `https` URIs. The authority must be
    /// non-empty and free of userinfo (RFC 9110 §4.2.4: treat userinfo as an error); it
    /// becomes the request's authority and Host is then only validated. An empty path is
    /// stored as `/` (RFC 9110 §4.2.3).
    private mutating func parseAbsoluteForm(_ t: UnsafeRawBufferPointer, _ request: HTTPRequest) -> HTTP1Error? {
        let n = t.count
        var k = 0
        while k < n && t[k] != 0x3A { k += 1 }
        let scheme = UnsafeRawBufferPointer(rebasing: t[0..<k])
        guard ASCII.equalsLowercase(scheme, "http") || ASCII.equalsLowercase(scheme, "https"),
            k + 2 < n, t[k + 1] == 0x2F, t[k + 2] == 0x2F
        else { return .invalidTarget }
        let as0 = k + 3
        var ae = as0
        while ae < n {
            let b = t[ae]
            if b == 0x2F || b == 0x3F || b == 0x23 { break }
            ae += 1
        }
        let authority = UnsafeRawBufferPointer(rebasing: t[as0..<ae])
        guard HTTP1Parser.isValidAuthority(authority) else { return .invalidTarget }
        let rest = UnsafeRawBufferPointer(rebasing: t[ae..<n])
        let slash = rest.isEmpty || rest[0] != 0x2F
        guard let pathLength = HTTP1Parser.pathLength(rest) else { return .invalidTarget }
        targetForm = .absolute
        storeTarget(rest, prefixSlash: slash, pathLength: pathLength, request)
        request.authorityRange = request.appendLine(authority)
        return nil
    }

    /// Copies path+query into `request.line` and sets target/path/query ranges.
    @inline(__always)
    private func storeTarget(_ t: UnsafeRawBufferPointer, prefixSlash: Bool, pathLength: Int, _ request: HTTPRequest) {
        let s = request.line.count
        if prefixSlash {
            let slash: StaticString = "/"
            _ = request.appendLine(UnsafeRawBufferPointer(start: slash.utf8Start, count: 1))
        }
        _ = request.appendLine(t)
        let e = request.line.count
        let pathEnd = s + pathLength + (prefixSlash ? 1 : 0)
        request.targetRange = s..<e
        request.pathRange = s..<pathEnd
        request.queryRange = pathEnd < e && request.line[pathEnd] == 0x3F ? (pathEnd + 1)..<e : nil
    }

    /// Length of the path part (up to `?`), or nil when a `%` is not followed by two hex
    /// digits (RFC 3986 §2.1; Go rejects `%zz` in the path but not in the query).
    @inline(__always)
    static func pathLength(_ t: UnsafeRawBufferPointer) -> Int? {
        let n = t.count
        var k = 0
        while k < n {
            let b = t[k]
            if b == 0x3F { return k }
            if b == 0x25 {
                guard k + 2 < n, ByteClass.hexValue(t[k + 1]) != nil, ByteClass.hexValue(t[k + 2]) != nil else {
                    return nil
                }
                k += 3
                continue
            }
            k += 1
        }
        return n
    }

    /// A non-empty authority made of host bytes (no userinfo, no spaces).
    @inline(__always)
    static func isValidAuthority(_ a: UnsafeRawBufferPointer) -> Bool {
        guard !a.isEmpty else { return false }
        for b in a where !ByteClass.isHostByte(b) { return false }
        return true
    }
}
