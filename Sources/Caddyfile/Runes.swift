// Rune-level helpers that reproduce Go's `unicode/utf8` and `unicode.IsSpace` exactly, so that the
// lexer and the formatter see the same characters as Caddy does, even for malformed input.

/// Go-compatible UTF-8 handling.
///
/// Caddy reads its input with `bufio.Reader.ReadRune` / `bytes.Reader.ReadRune`. Every byte that
/// does not start a well-formed sequence becomes U+FFFD on its own (one replacement per byte),
/// which differs from Swift's `String(decoding:)` (one replacement per maximal subpart).
enum Runes {
    /// The replacement character Go substitutes for each invalid byte.
    static let replacement: Unicode.Scalar = "\u{FFFD}"

    /// Decodes `bytes` into scalars the way Go's `utf8.DecodeRune` does, one rune at a time.
    static func decode(_ bytes: [UInt8]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let (scalar, size) = decodeOne(bytes, at: i)
            out.append(scalar)
            i += size
        }
        return out
    }

    /// Decodes the rune starting at `index`; returns U+FFFD with size 1 for an invalid sequence.
    static func decodeOne(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar, Int) {
        guard index >= 0, index < bytes.count else { return (replacement, 1) }
        let b0 = bytes[index]
        if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
        func cont(_ offset: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> UInt32? {
            let j = index + offset
            guard j < bytes.count else { return nil }
            let b = bytes[j]
            guard b >= lo, b <= hi else { return nil }
            return UInt32(b & 0x3F)
        }
        var value: UInt32
        var size: Int
        switch b0 {
        case 0xC2...0xDF:
            guard let c1 = cont(1) else { return (replacement, 1) }
            value = (UInt32(b0 & 0x1F) << 6) | c1
            size = 2
        case 0xE0...0xEF:
            let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard let c1 = cont(1, lo, hi), let c2 = cont(2) else { return (replacement, 1) }
            value = (UInt32(b0 & 0x0F) << 12) | (c1 << 6) | c2
            size = 3
        case 0xF0...0xF4:
            let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
            let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
            guard let c1 = cont(1, lo, hi), let c2 = cont(2), let c3 = cont(3) else {
                return (replacement, 1)
            }
            value = (UInt32(b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3
            size = 4
        default:
            return (replacement, 1)
        }
        guard let scalar = Unicode.Scalar(value) else { return (replacement, 1) }
        return (scalar, size)
    }

    /// Go's `unicode.IsSpace`: the Latin-1 spaces plus the Unicode White_Space property.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0:
            return true
        case 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Builds a `String` from scalars (always valid: invalid bytes were already replaced).
    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var s = String()
        s.unicodeScalars.append(contentsOf: scalars)
        return s
    }

    /// Appends the UTF-8 encoding of `c` to `out`.
    static func appendUTF8(_ c: Unicode.Scalar, to out: inout [UInt8]) {
        out.append(contentsOf: c.utf8)
    }

    /// Trims Go-`unicode.IsSpace` characters from both ends of `bytes`, like `bytes.TrimSpace`.
    static func trimSpace(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        let scalars = decodeWithOffsets(bytes)
        var lo = 0
        while lo < scalars.count, isSpace(scalars[lo].scalar) { lo += 1 }
        var hi = scalars.count
        while hi > lo, isSpace(scalars[hi - 1].scalar) { hi -= 1 }
        let start = lo < scalars.count ? scalars[lo].offset : bytes.count
        let end = hi < scalars.count ? scalars[hi].offset : bytes.count
        return bytes[start..<max(start, end)]
    }

    /// Decodes and remembers where each rune starts.
    static func decodeWithOffsets(_ bytes: [UInt8]) -> [(scalar: Unicode.Scalar, offset: Int)] {
        var out: [(scalar: Unicode.Scalar, offset: Int)] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let (scalar, size) = decodeOne(bytes, at: i)
            out.append((scalar, i))
            i += size
        }
        return out
    }
}

/// Byte-exact string comparisons (Go compares strings byte by byte; Swift compares by
/// grapheme clusters under canonical equivalence, which would change prefix tests such as
/// `"@\u{301}x".hasPrefix("@")`).
extension String {
    /// Whether the UTF-8 bytes of `self` start with those of `prefix`.
    func bytesHavePrefix(_ prefix: String) -> Bool {
        utf8.starts(with: prefix.utf8)
    }

    /// Whether the UTF-8 bytes of `self` end with those of `suffix`.
    func bytesHaveSuffix(_ suffix: String) -> Bool {
        let a = utf8
        let b = suffix.utf8
        guard a.count >= b.count else { return false }
        return a.suffix(b.count).elementsEqual(b)
    }

    /// Whether the UTF-8 bytes of `self` equal those of `other`.
    func bytesEqual(_ other: String) -> Bool {
        utf8.elementsEqual(other.utf8)
    }

    /// Whether the UTF-8 bytes of `self` contain the byte `b`.
    func bytesContain(_ b: UInt8) -> Bool {
        utf8.contains(b)
    }

    /// Builds a string from UTF-8 bytes taken from a Go string slice (always re-validated).
    init(goBytes bytes: some Collection<UInt8>) {
        self = String(decoding: Array(bytes), as: UTF8.self)
    }
}
