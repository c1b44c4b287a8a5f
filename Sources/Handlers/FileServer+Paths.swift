import HTTPCore
import IOCore

/// Path arithmetic of the file server, byte for byte Caddy's (`caddyhttp.go`
/// SanitizedPathJoin, `staticfiles.go` fileHidden) and Go's (`path.Clean`, `path.Base`,
/// `filepath.Match`).
enum FSPath {
    /// Appends `path.Clean("/" + decoded)[1:]` to `out`: the request path relative to the
    /// root, without `.`/`..`/empty segments and without leading or trailing slash ("" for
    /// the root). `tmp` is scratch space (must not be `out`).
    static func appendRelative(_ decoded: UnsafeRawBufferPointer, tmp: ByteBuffer, into out: ByteBuffer) {
        tmp.clear()
        tmp.reserveWritable(decoded.count + 1)
        tmp.append(byte: UInt8(ascii: "/"))
        tmp.append(decoded)
        let mark = out.writerIndex
        if !CleanPath.needsCleaning(tmp.readable) && tmp.readable.last != UInt8(ascii: "/") || tmp.readableBytes == 1 {
            out.append(UnsafeRawBufferPointer(rebasing: tmp.readable[1...]))
            return
        }
        CleanPath.goClean(tmp.readable, into: out)
        // Drop the leading "/" the clean result starts with.
        let n = out.writerIndex - mark
        if n >= 1 {
            memmoveBytes(out.base + mark, out.base + mark + 1, n - 1)
            out.writerIndex -= 1
        }
    }

    @inline(__always)
    static func memmoveBytes(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafeMutablePointer<UInt8>, _ n: Int) {
        if n > 0 { UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n) }
    }

    /// Go's `path.Base`: the last element, trailing slashes removed; "." for empty, "/" for
    /// only slashes.
    static func base(_ p: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        if p.isEmpty { return staticBytes(".") }
        var end = p.count
        while end > 0 && p[end - 1] == UInt8(ascii: "/") { end -= 1 }
        if end == 0 { return staticBytes("/") }
        var start = end
        while start > 0 && p[start - 1] != UInt8(ascii: "/") { start -= 1 }
        return UnsafeRawBufferPointer(rebasing: p[start..<end])
    }

    @inline(__always)
    static func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }

    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where a[i] != b[i] { return false }
        return true
    }

    /// Go's `filepath.Match` on Unix: `*` any run of non-`/` characters, `?` one non-`/`
    /// character, `[…]` a class (ranges, `^` negation), `\` escapes. A malformed pattern
    /// matches nothing (Go returns ErrBadPattern, which Caddy treats as "not hidden").
    static func match(_ pattern: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> Bool {
        matchFrom(pattern, 0, name, 0) == 1
    }

    /// 1 match, 0 no match, -1 bad pattern.
    private static func matchFrom(_ p: UnsafeRawBufferPointer, _ pi0: Int, _ s: UnsafeRawBufferPointer, _ si0: Int) -> Int {
        var pi = pi0, si = si0
        while pi < p.count {
            let c = p[pi]
            if c == UInt8(ascii: "*") {
                var k = pi
                while k < p.count && p[k] == UInt8(ascii: "*") { k += 1 }
                if k == p.count {
                    // Trailing star: the rest must not contain a separator.
                    for j in si..<s.count where s[j] == UInt8(ascii: "/") { return 0 }
                    return 1
                }
                var j = si
                while true {
                    let r = matchFrom(p, k, s, j)
                    if r != 0 { return r }
                    if j >= s.count || s[j] == UInt8(ascii: "/") { return 0 }
                    j += runeLength(s, j)
                }
            }
            guard si < s.count else {
                return validRest(p, pi) ? 0 : -1
            }
            switch c {
            case UInt8(ascii: "?"):
                if s[si] == UInt8(ascii: "/") { return 0 }
                si += runeLength(s, si)
                pi += 1
            case UInt8(ascii: "["):
                let (ok, matched, next) = matchClass(p, pi + 1, s, si)
                if !ok { return -1 }
                if !matched { return 0 }
                si += runeLength(s, si)
                pi = next
            case UInt8(ascii: "\\"):
                pi += 1
                guard pi < p.count else { return -1 }
                if p[pi] != s[si] { return 0 }
                pi += 1
                si += 1
            default:
                if c != s[si] { return 0 }
                pi += 1
                si += 1
            }
        }
        return si == s.count ? 1 : 0
    }

    private static func validRest(_ p: UnsafeRawBufferPointer, _ from: Int) -> Bool {
        var i = from
        while i < p.count {
            if p[i] == UInt8(ascii: "\\") {
                if i + 1 >= p.count { return false }
                i += 2
            } else if p[i] == UInt8(ascii: "[") {
                var j = i + 1
                if j < p.count && p[j] == UInt8(ascii: "^") { j += 1 }
                while j < p.count && p[j] != UInt8(ascii: "]") { j += 1 }
                if j >= p.count { return false }
                i = j + 1
            } else {
                i += 1
            }
        }
        return true
    }

    /// `[…]` at `start` (after `[`) against the rune at `si`: (valid, matched, index after `]`).
    private static func matchClass(_ p: UnsafeRawBufferPointer, _ start: Int, _ s: UnsafeRawBufferPointer, _ si: Int) -> (Bool, Bool, Int) {
        if s[si] == UInt8(ascii: "/") { return (true, false, start) }
        let r = decodeRune(s, si)
        var i = start
        var negate = false
        if i < p.count && p[i] == UInt8(ascii: "^") {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while true {
            guard i < p.count else { return (false, false, i) }
            if p[i] == UInt8(ascii: "]") && !first {
                i += 1
                break
            }
            first = false
            guard let (lo, n1) = classChar(p, i) else { return (false, false, i) }
            i = n1
            var hi = lo
            if i < p.count && p[i] == UInt8(ascii: "-") {
                guard let (h, n2) = classChar(p, i + 1) else { return (false, false, i) }
                hi = h
                i = n2
            }
            if lo <= r && r <= hi { matched = true }
        }
        return (true, matched != negate, i)
    }

    private static func classChar(_ p: UnsafeRawBufferPointer, _ i0: Int) -> (UInt32, Int)? {
        var i = i0
        guard i < p.count else { return nil }
        if p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "]") { return nil }
        if p[i] == UInt8(ascii: "\\") {
            i += 1
            guard i < p.count else { return nil }
        }
        return (decodeRune(p, i), i + runeLength(p, i))
    }

    @inline(__always)
    static func runeLength(_ s: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let c = s[i]
        let n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
        return min(n, s.count - i)
    }

    static func decodeRune(_ s: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        let n = runeLength(s, i)
        if n == 1 { return UInt32(s[i]) }
        var v = UInt32(s[i]) & (0xFF >> (n + 1))
        for k in 1..<n { v = v << 6 | (UInt32(s[i + k]) & 0x3F) }
        return v
    }
}

/// One `hide` entry (Caddy's `fileHidden`): without a `/` it hides every file or directory
/// of that name (a glob against each path component); with one, that absolute path and
/// everything below it, or any absolute path it matches as a glob. Static entries with a `/`
/// are made absolute at config time (Caddy's Provision); entries with placeholders are
/// expanded per request.
struct HidePattern: Sendable {
    let bytes: [UInt8]
    let template: Template?
    let hasSeparator: Bool

    init(_ raw: String, cwd: [UInt8], environment: [String: String]) {
        if raw.contains("{") {
            template = Template(raw, keepUnknown: false, environment: environment)
            bytes = []
            hasSeparator = raw.contains("/")
        } else {
            template = nil
            let b = Array(raw.utf8)
            hasSeparator = b.contains(UInt8(ascii: "/"))
            if hasSeparator {
                let joined = b.first == UInt8(ascii: "/") ? b : cwd + [UInt8(ascii: "/")] + b
                let out = ByteBuffer(capacity: joined.count + 2)
                joined.withUnsafeBytes { CleanPath.goClean($0, into: out) }
                bytes = out.readableArray()
            } else {
                bytes = b
            }
        }
    }

    /// True when `filename` (absolute, clean) is hidden by this entry.
    func hides(_ filename: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBytes { HidePattern.hides(pattern: $0, separator: hasSeparator, filename) }
    }

    static func hides(pattern h: UnsafeRawBufferPointer, separator: Bool, _ f: UnsafeRawBufferPointer) -> Bool {
        if !separator {
            var start = 0
            for i in 0...f.count where i == f.count || f[i] == UInt8(ascii: "/") {
                if FSPath.match(h, UnsafeRawBufferPointer(rebasing: f[start..<i])) { return true }
                start = i + 1
            }
        } else if f.count > h.count, FSPath.equal(UnsafeRawBufferPointer(rebasing: f[0..<h.count]), h),
            f[h.count] == UInt8(ascii: "/")
        {
            return true
        }
        return FSPath.match(h, f)
    }
}

extension FileServerHandler {
    /// Go's `filepath.Abs` for config-time paths.
    package static func absolute(_ p: String) -> String {
        String(decoding: FileServerLocal.current.absolutePath(Array(p.utf8)), as: UTF8.self)
    }

    /// Caddy's fileHidden for one config-time pattern against an absolute file name.
    package static func hides(pattern: String, file: String) -> Bool {
        let h = HidePattern(pattern, cwd: FileServerLocal.currentDirectory(), environment: [:])
        var f = file
        return f.withUTF8 { h.hides(UnsafeRawBufferPointer($0)) }
    }
}
