/// Byte classification with bit masks: no tables to initialise, no bounds checks.
enum ByteClass {
    /// Bits 0–63 / 64–127 of `tchar` (RFC 9110 §5.6.2):
    /// `!#$%&'*+-.^_`|~`, DIGIT, ALPHA.
    @inline(__always) static var tcharLow: UInt64 { 0x03ff_6cfa_0000_0000 }
    @inline(__always) static var tcharHigh: UInt64 { 0x57ff_ffff_c7ff_fffe }
    /// Bits of the bytes Go's `httpguts.ValidHostHeader` accepts: ALPHA, DIGIT and
    /// `!$%&'()*+,-.:;=[]_~` (RFC 3986 §3.2.2 reg-name / IP-literal / port characters).
    @inline(__always) static var hostLow: UInt64 { 0x2fff_7ff2_0000_0000 }
    @inline(__always) static var hostHigh: UInt64 { 0x47ff_fffe_afff_fffe }

    @inline(__always)
    static func isTchar(_ b: UInt8) -> Bool {
        if b < 64 { return (tcharLow >> UInt64(b)) & 1 != 0 }
        if b < 128 { return (tcharHigh >> UInt64(b &- 64)) & 1 != 0 }
        return false
    }

    /// Replaces CR and LF in the `count` bytes at `p` by SP (a field value being written, so
    /// that no value can split the head). Eight bytes at a time: a word without any byte
    /// below 0x0E (the "has less than" bit trick, exact for existence) holds neither; a word
    /// that trips the test (HTAB does) is rewritten byte by byte.
    @inline(__always)
    static func replaceCRLF(_ p: UnsafeMutablePointer<UInt8>, _ count: Int) {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var k = 0
        while k &+ 8 <= count {
            let x = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
            if (x &- ones &* 0x0E) & ~x & highs != 0 {
                for i in k..<(k &+ 8) where p[i] == 0x0D || p[i] == 0x0A { p[i] = 0x20 }
            }
            k &+= 8
        }
        while k < count {
            if p[k] == 0x0D || p[k] == 0x0A { p[k] = 0x20 }
            k &+= 1
        }
    }

    @inline(__always)
    static func isHostByte(_ b: UInt8) -> Bool {
        if b < 64 { return (hostLow >> UInt64(b)) & 1 != 0 }
        if b < 128 { return (hostHigh >> UInt64(b &- 64)) & 1 != 0 }
        return false
    }

    /// A byte allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
    @inline(__always)
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        (b >= 0x20 && b != 0x7F) || b == 0x09
    }

    /// True when every byte in `p[start..<end]` is a field value byte. Eight bytes at a time:
    /// a word without bytes below 0x20 and without 0x7F is valid as a whole (the classic
    /// "has less than" / "has zero" bit tricks, exact for existence); a word that trips either
    /// test (HTAB does) is rechecked byte by byte.
    @inline(__always)
    static func isValidFieldValue(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var k = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while k &+ 8 <= end {
            let x = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
            let below20 = (x &- ones &* 0x20) & ~x & highs
            let y = x ^ (ones &* 0x7F)
            let is7F = (y &- ones) & ~y & highs
            if below20 | is7F != 0 {
                for i in k..<(k &+ 8) where !isFieldValueByte(p[i]) { return false }
            }
            k &+= 8
        }
        while k < end {
            if !isFieldValueByte(p[k]) { return false }
            k &+= 1
        }
        return true
    }

    /// SP or HTAB (RFC 9110 §5.6.3 OWS).
    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// Value of a hex digit, or nil.
    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b &- 0x30
        case 0x41...0x46: return b &- 0x41 &+ 10
        case 0x61...0x66: return b &- 0x61 &+ 10
        default: return nil
        }
    }

    /// Calls `body` with each comma-separated element of a list value, trimmed of OWS,
    /// skipping empty elements (RFC 9110 §5.6.1).
    @inline(__always)
    static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        let n = value.count
        var i = 0
        while i < n {
            var start = i
            while i < n && value[i] != 0x2C { i += 1 }
            var end = i
            while start < end && isWhitespace(value[start]) { start += 1 }
            while end > start && isWhitespace(value[end - 1]) { end -= 1 }
            if end > start { body(UnsafeRawBufferPointer(rebasing: value[start..<end])) }
            i += 1
        }
    }
}
