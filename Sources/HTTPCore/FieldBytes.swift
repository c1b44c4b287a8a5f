/// Byte classes of RFC 9110 field syntax shared by the HTTP/1 server's encoder and the
/// upstream client (public and inlinable: called per header on hot paths in other modules,
/// where a plain cross-module call would not be inlined).
public enum FieldBytes {
    /// `tchar` (RFC 9110 §5.6.2: `!#$%&'*+-.^_`|~`, DIGIT, ALPHA) as a 256-entry table
    /// ("1" = tchar): one load and compare per byte.
    @inlinable @inline(__always) public static var tcharTable: StaticString { "0000000000000000000000000000000001011111001101101111111111000000011111111111111111111111111000111111111111111111111111111110101000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" }

    /// True when the `count` bytes at `p` are all tchars (a field name).
    @inlinable @inline(__always)
    public static func allTchar(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
        let t = tcharTable.utf8Start
        var i = 0
        while i < count {
            if t[Int(p.load(fromByteOffset: i, as: UInt8.self))] != 0x31 { return false }
            i &+= 1
        }
        return true
    }
}
