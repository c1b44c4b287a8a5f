#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Writes bytes through a raw pointer into space already reserved in a `ByteBuffer`, so a
/// whole response head costs one capacity check and no per-piece bookkeeping.
struct RawWriter {
    let start: UnsafeMutablePointer<UInt8>
    var p: UnsafeMutablePointer<UInt8>

    @inline(__always)
    init(_ start: UnsafeMutablePointer<UInt8>) {
        self.start = start
        p = start
    }

    /// Bytes written so far.
    @inline(__always) var count: Int { start.distance(to: p) }

    @inline(__always)
    mutating func put(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        UnsafeMutableRawPointer(p).copyMemory(from: s.utf8Start, byteCount: n)
        p += n
    }

    @inline(__always)
    mutating func put(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        UnsafeMutableRawPointer(p).copyMemory(from: src, byteCount: b.count)
        p += b.count
    }

    @inline(__always)
    mutating func put(byte b: UInt8) {
        p.pointee = b
        p += 1
    }

    /// Writes a non-negative decimal (at most 19 digits).
    @inline(__always)
    mutating func putDecimal(_ value: Int64) {
        var v = UInt64(max(0, value))
        var digits = 1
        var t = v
        while t >= 10 {
            t /= 10
            digits += 1
        }
        var i = digits - 1
        repeat {
            p[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
            v /= 10
            i -= 1
        } while i >= 0
        p += digits
    }

    /// Writes a positive value as lower-case hex without leading zeros (chunk sizes).
    @inline(__always)
    mutating func putHex(_ value: Int) {
        let v = UInt64(max(0, value))
        var digits = 1
        while digits < 16 && (v >> UInt64(4 * digits)) != 0 { digits += 1 }
        for k in 0..<digits {
            let d = UInt8(truncatingIfNeeded: (v >> UInt64(4 * (digits - 1 - k))) & 0xF)
            p[k] = d < 10 ? d &+ 0x30 : d &+ 0x57
        }
        p += digits
    }
}

extension ByteBuffer {
    /// Reserves `bound` bytes, lets `body` write at most that many, and commits what it wrote.
    @inline(__always)
    func write(reserving bound: Int, _ body: (inout RawWriter) -> Void) {
        reserveWritable(bound)
        var w = RawWriter(writePointer)
        body(&w)
        precondition(w.count <= bound, "RawWriter overran its reservation")
        commit(w.count)
    }
}
