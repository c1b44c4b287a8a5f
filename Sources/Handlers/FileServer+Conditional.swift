import HTTPCore
import IOCore

/// Conditional requests (RFC 9110 §13) as Go's `http.ServeContent` evaluates them for Caddy
/// (`checkPreconditions`, following RFC 9110 §13.2.2's order):
///
/// 1. If-Match (strong comparison, `*` matches), else If-Unmodified-Since → 412 when false;
/// 2. If-None-Match (weak comparison, `*` matches) → 304 for GET/HEAD, 412 otherwise; else
///    If-Modified-Since (GET/HEAD only) → 304 when the file is not newer (whole seconds);
/// 3. If-Range (strong ETag, or an HTTP date equal to the mtime) decides whether Range counts.
///
/// Dates that do not parse are ignored; an unknown mtime (0 or 1 s after the epoch) turns the
/// date conditions off. ETag lists follow Go's `scanETag`: a malformed entry ends the scan.
struct Preconditions {
    var ifMatch = -1
    var ifNoneMatch = -1
    var ifModifiedSince = -1
    var ifUnmodifiedSince = -1
    var ifRange = -1
    var range = -1

    enum Outcome {
        case proceed(useRange: Bool)
        case notModified
        case preconditionFailed
    }

    /// Indexes of the conditional fields (first occurrence, as Go's Header.Get), one pass.
    init(_ fields: HTTPFields) {
        for i in fields.entries.indices {
            switch fields.entries[i].token {
            case .ifMatch: if ifMatch < 0 { ifMatch = i }
            case .ifNoneMatch: if ifNoneMatch < 0 { ifNoneMatch = i }
            case .ifModifiedSince: if ifModifiedSince < 0 { ifModifiedSince = i }
            case .ifUnmodifiedSince: if ifUnmodifiedSince < 0 { ifUnmodifiedSince = i }
            case .ifRange: if ifRange < 0 { ifRange = i }
            case .range: if range < 0 { range = i }
            default: break
            }
        }
    }

    /// Evaluates the preconditions for a representation with `etag` (may be empty) and
    /// `mtime` (seconds, nil when unknown).
    func evaluate(_ fields: HTTPFields, method: HTTPMethod, etag: UnsafeRawBufferPointer, mtime: Int?) -> Outcome {
        let getOrHead = method == .GET || method == .HEAD
        var ch = 0  // 0 none, 1 true, -1 false
        if ifMatch >= 0 {
            ch = fields.withField(ifMatch) { _, v in Preconditions.checkIfMatch(v, etag) }
        }
        if ch == 0 && ifUnmodifiedSince >= 0, let m = mtime {
            if let t = fields.withField(ifUnmodifiedSince, { _, v in HTTPDate.parse(Preconditions.trim(v)) }) {
                ch = m <= t ? 1 : -1
            }
        }
        if ch == -1 { return .preconditionFailed }
        var inm = 0
        if ifNoneMatch >= 0 {
            inm = fields.withField(ifNoneMatch) { _, v in Preconditions.checkIfNoneMatch(v, etag) }
        }
        if inm == -1 { return getOrHead ? .notModified : .preconditionFailed }
        if inm == 0 && getOrHead && ifModifiedSince >= 0, let m = mtime {
            if let t = fields.withField(ifModifiedSince, { _, v in HTTPDate.parse(Preconditions.trim(v)) }), m <= t {
                return .notModified
            }
        }
        guard range >= 0 else { return .proceed(useRange: false) }
        if fields.withField(range, { _, v in v.isEmpty }) { return .proceed(useRange: false) }
        if ifRange >= 0 && getOrHead {
            let ok = fields.withField(ifRange) { _, v -> Bool in
                if v.isEmpty { return true }
                let (tag, _) = Preconditions.scanETag(v, 0)
                if let tag {
                    return Preconditions.strongMatch(UnsafeRawBufferPointer(rebasing: v[tag]), etag)
                }
                guard let m = mtime, let t = HTTPDate.parse(Preconditions.trim(v)) else { return false }
                return t == m
            }
            if !ok { return .proceed(useRange: false) }
        }
        return .proceed(useRange: true)
    }

    // MARK: ETags (RFC 9110 §8.8.3)

    static func checkIfMatch(_ v: UnsafeRawBufferPointer, _ etag: UnsafeRawBufferPointer) -> Int {
        var i = 0
        if trim(v).isEmpty { return 0 }
        while true {
            i = skipSpaces(v, i)
            if i >= v.count { break }
            if v[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if v[i] == UInt8(ascii: "*") { return 1 }
            let (tag, next) = scanETag(v, i)
            guard let tag else { break }
            if strongMatch(UnsafeRawBufferPointer(rebasing: v[tag]), etag) { return 1 }
            i = next
        }
        return -1
    }

    static func checkIfNoneMatch(_ v: UnsafeRawBufferPointer, _ etag: UnsafeRawBufferPointer) -> Int {
        var i = 0
        if v.isEmpty { return 0 }
        while true {
            i = skipSpaces(v, i)
            if i >= v.count { break }
            if v[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if v[i] == UInt8(ascii: "*") { return -1 }
            let (tag, next) = scanETag(v, i)
            guard let tag else { break }
            if weakMatch(UnsafeRawBufferPointer(rebasing: v[tag]), etag) { return -1 }
            i = next
        }
        return 1
    }

    /// Go's `scanETag` from `start` (leading spaces skipped): the range of `W/"…"` or `"…"`
    /// and the index after it, or nil.
    static func scanETag(_ v: UnsafeRawBufferPointer, _ start: Int) -> (Range<Int>?, Int) {
        let s = skipSpaces(v, start)
        var i = s
        if i + 1 < v.count && v[i] == UInt8(ascii: "W") && v[i + 1] == UInt8(ascii: "/") { i += 2 }
        guard v.count - i >= 2, v[i] == UInt8(ascii: "\"") else { return (nil, s) }
        i += 1
        while i < v.count {
            let c = v[i]
            if c == UInt8(ascii: "\"") { return (s..<(i + 1), i + 1) }
            guard c == 0x21 || (c >= 0x23 && c <= 0x7E) || c >= 0x80 else { return (nil, s) }
            i += 1
        }
        return (nil, s)
    }

    static func strongMatch(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        !a.isEmpty && a[0] == UInt8(ascii: "\"") && FSPath.equal(a, b)
    }

    static func weakMatch(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        FSPath.equal(stripWeak(a), stripWeak(b))
    }

    @inline(__always)
    static func stripWeak(_ a: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        if a.count >= 2 && a[0] == UInt8(ascii: "W") && a[1] == UInt8(ascii: "/") { return UnsafeRawBufferPointer(rebasing: a[2...]) }
        return a
    }

    @inline(__always)
    static func skipSpaces(_ v: UnsafeRawBufferPointer, _ i0: Int) -> Int {
        var i = i0
        while i < v.count && (v[i] == 0x20 || v[i] == 0x09) { i += 1 }
        return i
    }

    /// Go's textproto.TrimString (spaces, tabs, CR, LF).
    static func trim(_ v: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var lo = 0, hi = v.count
        func ws(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A }
        while lo < hi && ws(v[lo]) { lo += 1 }
        while hi > lo && ws(v[hi - 1]) { hi -= 1 }
        return UnsafeRawBufferPointer(rebasing: v[lo..<hi])
    }
}

/// Caddy's strong validator (`staticfiles.go` calculateEtag): `"<mtime ns base36>-<size
/// base36>"`, or none when the mtime is not useful (0 or 1 s after the epoch).
enum ETag {
    /// Writes the ETag for `mtime`/`size` into `out` (at most 40 bytes); returns its length, 0
    /// when there is none.
    static func write(mtimeSec: Int, mtimeNsec: Int, size: Int64, into out: UnsafeMutablePointer<UInt8>) -> Int {
        guard usefulModTime(mtimeSec) else { return 0 }
        var n = 0
        out[n] = UInt8(ascii: "\"")
        n += 1
        n += base36(Int64(mtimeSec) &* 1_000_000_000 &+ Int64(mtimeNsec), out + n)
        out[n] = UInt8(ascii: "-")
        n += 1
        n += base36(size, out + n)
        out[n] = UInt8(ascii: "\"")
        return n + 1
    }

    @inline(__always)
    static func usefulModTime(_ sec: Int) -> Bool { sec != 0 && sec != 1 }

    /// Go's strconv.FormatInt(v, 36).
    static func base36(_ v: Int64, _ out: UnsafeMutablePointer<UInt8>) -> Int {
        let digits: StaticString = "0123456789abcdefghijklmnopqrstuvwxyz"
        var u = v.magnitude
        var tmp: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &tmp) { t in
            var k = 0
            repeat {
                t[k] = digits.utf8Start[Int(u % 36)]
                u /= 36
                k += 1
            } while u > 0
            var n = 0
            if v < 0 {
                out[0] = UInt8(ascii: "-")
                n = 1
            }
            for j in 0..<k { out[n + j] = t[k - 1 - j] }
            return n + k
        }
    }
}
