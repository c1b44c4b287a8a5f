#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer with a read index and a write index, owned by one connection and
/// reused for its whole life, so steady-state traffic allocates nothing.
///
/// Bytes in `readerIndex..<writerIndex` are readable; the space after `writerIndex` is free.
/// Not thread-safe: a buffer lives on one event-loop thread.
///
/// `public` (not `package`) with `@inlinable` accessors: this toolchain only inlines
/// `@inlinable` bodies of public declarations into other modules, and every protocol module
/// calls these per request (a call, plus a retain and release of the buffer around it).
public final class ByteBuffer {
    /// Start of the storage.
    public private(set) var base: UnsafeMutablePointer<UInt8>
    /// Size of the storage.
    public private(set) var capacity: Int
    /// First readable byte.
    public var readerIndex: Int = 0
    /// One past the last readable byte.
    public var writerIndex: Int = 0

    /// Creates a buffer with `capacity` bytes of storage.
    package init(capacity: Int = 4096) {
        let cap = max(capacity, 16)
        base = .allocate(capacity: cap)
        self.capacity = cap
    }

    deinit { base.deallocate() }

    /// Number of readable bytes.
    @inlinable @inline(__always) public var readableBytes: Int { writerIndex - readerIndex }
    /// Free bytes after the write index.
    @inlinable @inline(__always) public var writableBytes: Int { capacity - writerIndex }
    /// True when nothing is readable.
    @inlinable @inline(__always) public var isEmpty: Bool { writerIndex == readerIndex }

    /// The readable bytes, valid until the next mutation.
    @inlinable @inline(__always) public var readable: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + readerIndex, count: writerIndex - readerIndex)
    }

    /// Drops everything.
    @inlinable @inline(__always) public func clear() {
        readerIndex = 0
        writerIndex = 0
    }

    /// Marks `n` readable bytes as consumed; resets both indexes when the buffer empties.
    @inlinable @inline(__always) public func consume(_ n: Int) {
        readerIndex += n
        if readerIndex >= writerIndex {
            readerIndex = 0
            writerIndex = 0
        }
    }

    /// Moves the readable bytes to the front of the storage.
    @inlinable public func compact() {
        guard readerIndex > 0 else { return }
        let n = readableBytes
        if n > 0 { memmove(base, base + readerIndex, n) }
        readerIndex = 0
        writerIndex = n
    }

    /// Ensures at least `n` writable bytes, compacting first and growing only if needed.
    @inlinable @inline(__always) public func reserveWritable(_ n: Int) {
        if writableBytes >= n { return }
        grow(n)
    }

    @usableFromInline @inline(never)
    func grow(_ n: Int) {
        compact()
        if writableBytes >= n { return }
        var newCap = capacity * 2
        while newCap - writerIndex < n { newCap *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: newCap)
        if writerIndex > 0 { nb.update(from: base, count: writerIndex) }
        base.deallocate()
        base = nb
        capacity = newCap
    }

    /// Shrinks storage back to `capacity` bytes when it is empty and larger than that
    /// (used after a burst, e.g. a big request head, so idle connections stay small).
    package func shrinkIfEmpty(to cap: Int) {
        guard isEmpty, capacity > cap * 4 else { return }
        base.deallocate()
        base = .allocate(capacity: cap)
        capacity = cap
        readerIndex = 0
        writerIndex = 0
    }

    /// Pointer to the first writable byte; call `commit` after filling.
    @inlinable @inline(__always) public var writePointer: UnsafeMutablePointer<UInt8> { base + writerIndex }

    /// Records `n` bytes written at `writePointer`.
    @inlinable @inline(__always) public func commit(_ n: Int) { writerIndex += n }

    /// Appends raw bytes.
    @inlinable @inline(__always) public func append(_ p: UnsafeRawBufferPointer) {
        let n = p.count
        guard n > 0, let src = p.baseAddress else { return }
        reserveWritable(n)
        UnsafeMutableRawPointer(base + writerIndex).copyMemory(from: src, byteCount: n)
        writerIndex += n
    }

    /// Appends the bytes of an array.
    @inlinable @inline(__always) public func append(_ a: [UInt8]) {
        a.withUnsafeBytes { append($0) }
    }

    /// Appends a static string's UTF-8 bytes.
    @inlinable @inline(__always) public func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Appends a string's UTF-8 bytes (no allocation for native strings).
    package func append(string s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends one byte.
    @inlinable @inline(__always) public func append(byte b: UInt8) {
        reserveWritable(1)
        base[writerIndex] = b
        writerIndex += 1
    }

    /// Appends a non-negative or negative decimal integer without allocating.
    package func appendDecimal(_ value: Int) {
        reserveWritable(21)
        var v = value
        if v < 0 {
            base[writerIndex] = UInt8(ascii: "-")
            writerIndex += 1
            if v == Int.min {
                append("9223372036854775808")
                return
            }
            v = -v
        }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &tmp) { raw -> Int in
            var i = 0
            repeat {
                raw[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
                i += 1
            } while v > 0
            return i
        }
        withUnsafeBytes(of: &tmp) { raw in
            for k in 0..<n { base[writerIndex + k] = raw[n - 1 - k] }
        }
        writerIndex += n
    }

    /// Appends `value` as lowercase hexadecimal (used for chunk sizes).
    package func appendHex(_ value: Int) {
        reserveWritable(16)
        let digits: StaticString = "0123456789abcdef"
        var shift = 60
        var started = false
        while shift >= 0 {
            let d = (value >> shift) & 0xF
            if d != 0 || started || shift == 0 {
                base[writerIndex] = digits.utf8Start[d]
                writerIndex += 1
                started = true
            }
            shift -= 4
        }
    }

    /// A copy of the readable bytes (tests and cold paths only).
    package func readableArray() -> [UInt8] { Array(readable) }
}
