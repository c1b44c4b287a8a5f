import IOCore

/// Go `net/url` escaping rules (RFC 3986), for placeholders and rewrites: `escape(s,
/// encodePath)`, `QueryEscape`, `validEncoded` and `EscapedPath`.
package enum URLEscaping {
    static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func isUnreservedAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }

    /// Go's `shouldEscape(c, encodePath)`.
    @inline(__always)
    static func shouldEscapePath(_ c: UInt8) -> Bool {
        if isUnreservedAlnum(c) { return false }
        switch c {
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"): return false
        case UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "/"),
            UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "@"):
            return false
        default: return true
        }
    }

    @inline(__always)
    static func appendPercent(_ c: UInt8, _ out: ByteBuffer) {
        out.append(byte: UInt8(ascii: "%"))
        out.append(byte: upperHex[Int(c >> 4)])
        out.append(byte: upperHex[Int(c & 15)])
    }

    /// Go's `escape(s, encodePath)` (what `URL.EscapedPath` gives for a decoded path).
    package static func appendEscapedPath(_ decoded: UnsafeRawBufferPointer, into out: ByteBuffer) {
        for c in decoded {
            if shouldEscapePath(c) { appendPercent(c, out) } else { out.append(byte: c) }
        }
    }

    /// Go's `url.QueryEscape`: everything but `A-Za-z0-9-_.~` is `%XX`, space is `+`.
    package static func appendQueryEscaped(_ s: UnsafeRawBufferPointer, into out: ByteBuffer) {
        for c in s {
            if isUnreservedAlnum(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "~")
            {
                out.append(byte: c)
            } else if c == 0x20 {
                out.append(byte: UInt8(ascii: "+"))
            } else {
                appendPercent(c, out)
            }
        }
    }

    /// Go's `validEncoded(s, encodePath)`: the raw path can be used as it is.
    package static func isValidEncodedPath(_ s: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
                UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "["), UInt8(ascii: "]"):
                break
            case UInt8(ascii: "%"):
                guard i + 2 < s.count, URLDecoding.hex(s[i + 1]) != nil, URLDecoding.hex(s[i + 2]) != nil else { return false }
            default:
                if shouldEscapePath(c) { return false }
            }
            i += 1
        }
        return true
    }

    /// `URL.EscapedPath()` for a raw request path: the raw bytes when they are a valid
    /// encoding, else the canonical escaping of the decoded path.
    package static func appendEscapedPath(raw: UnsafeRawBufferPointer, into out: ByteBuffer) {
        if isValidEncodedPath(raw) {
            out.append(raw)
            return
        }
        let mark = out.writerIndex
        URLDecoding.appendDecodedPath(raw, into: out)
        // Escape the decoded bytes in place: decode into the buffer, then re-escape from a copy
        // on the stack (paths are short; large ones fall back to a heap copy).
        let n = out.writerIndex - mark
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n) { tmp in
            for k in 0..<n { tmp[k] = out.base[mark + k] }
            out.writerIndex = mark
            appendEscapedPath(UnsafeRawBufferPointer(tmp), into: out)
        }
    }

    /// Go's `url.PathUnescape`: false when an escape is malformed (the caller keeps the input).
    package static func appendPathUnescaped(_ s: UnsafeRawBufferPointer, into out: ByteBuffer) -> Bool {
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "%") {
                guard i + 2 < s.count, URLDecoding.hex(s[i + 1]) != nil, URLDecoding.hex(s[i + 2]) != nil else { return false }
            }
            i += 1
        }
        URLDecoding.appendDecodedPath(s, into: out)
        return true
    }
}
