/// ASCII case folding for protocol tokens (field names, list elements, option values): one
/// implementation for every module (`public` + `@inlinable` so parsers inline it).
public enum ASCII {
    /// `a` equals the lower-case literal `lower`, ignoring ASCII case in `a`.
    @inlinable @inline(__always)
    public static func equalsLowercase(_ a: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard a.count == lower.utf8CodeUnitCount else { return false }
        let p = lower.utf8Start
        for i in 0..<a.count {
            var c = a[i]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != p[i] { return false }
        }
        return true
    }

    /// `a` and `b` are equal ignoring ASCII case.
    @inlinable @inline(__always)
    public static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count {
            var x = a[i], y = b[i]
            if x >= 0x41 && x <= 0x5A { x |= 0x20 }
            if y >= 0x41 && y <= 0x5A { y |= 0x20 }
            if x != y { return false }
        }
        return true
    }
}
