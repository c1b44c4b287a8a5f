/// Standard base64 (RFC 4648 §4 alphabet), one decoder for the places that read it: Basic
/// credentials and base64-wrapped password hashes (`paddingRequired`, as Go's
/// `base64.StdEncoding`), and `client_auth` certificates (padding optional).
package enum Base64 {
    /// The decoded bytes, or nil for a character outside the alphabet, `=` anywhere but in
    /// the (at most two) final positions, or a length no encoding has.
    package static func decode(_ s: UnsafeRawBufferPointer, paddingRequired: Bool) -> [UInt8]? {
        var end = s.count
        while end > 0 && s.count - end < 2 && s[end - 1] == 61 { end -= 1 }
        if paddingRequired ? s.count % 4 != 0 : end % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(end / 4 * 3 + 2)
        var acc: UInt32 = 0
        var bits = 0
        for i in 0..<end {
            let c = s[i]
            let v: UInt32
            switch c {
            case 65...90: v = UInt32(c - 65)
            case 97...122: v = UInt32(c - 71)
            case 48...57: v = UInt32(c) + 4
            case 43: v = 62
            case 47: v = 63
            default: return nil
            }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    package static func decode(_ s: String, paddingRequired: Bool) -> [UInt8]? {
        var s = s
        return s.withUTF8 { decode(UnsafeRawBufferPointer($0), paddingRequired: paddingRequired) }
    }
}
