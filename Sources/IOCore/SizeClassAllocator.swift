#if canImport(Glibc)
import Glibc
#endif

/// The allocator behind nghttp2's and ngtcp2/nghttp3's `*_mem` structs: size-class free lists
/// in front of `malloc`, so the objects those libraries create and free for every request or
/// packet (streams, frame chains, header buffers, QPACK state) are recycled instead of hitting
/// the heap.
///
/// Blocks up to `maxPooledSize` bytes are rounded up to 16-byte classes and kept on a free list
/// when freed (at most `maxCachedBlocks` in all); larger ones go straight to `malloc`. Every
/// block has a 16-byte header holding its class (0 = unpooled) and size, which keeps the payload
/// 16-byte aligned like `malloc`'s. One instance serves one loop thread: no locking. Its users
/// free their C objects before letting go of it.
package final class SizeClassAllocator {
    static let header = 16
    static let granule = 16
    package let maxPooledSize: Int
    package let maxCachedBlocks: Int
    private let classes: Int
    private let heads: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private var cached = 0

    /// The defaults are HTTP/2's (one session); a QUIC endpoint asks for more.
    package init(maxPooledSize: Int = 1024, maxCachedBlocks: Int = 512) {
        self.maxPooledSize = maxPooledSize
        self.maxCachedBlocks = maxCachedBlocks
        classes = maxPooledSize / Self.granule + 1
        heads = .allocate(capacity: classes)
        heads.initialize(repeating: nil, count: classes)
    }

    deinit {
        for c in 0..<classes {
            var p = heads[c]
            while let b = p {
                p = b.load(as: UnsafeMutableRawPointer?.self)
                Glibc.free(b)
            }
        }
        heads.deallocate()
    }

    package func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let h = Self.header
        if size <= maxPooledSize {
            let c = max(1, (size + Self.granule - 1) / Self.granule)
            let block: UnsafeMutableRawPointer
            if let b = heads[c] {
                heads[c] = b.load(as: UnsafeMutableRawPointer?.self)
                cached -= 1
                block = b
            } else {
                guard let b = Glibc.malloc(h + c * Self.granule) else { return nil }
                block = b
            }
            block.storeBytes(of: c, as: Int.self)
            block.storeBytes(of: size, toByteOffset: 8, as: Int.self)
            return block + h
        }
        guard let block = Glibc.malloc(h + size) else { return nil }
        block.storeBytes(of: 0, as: Int.self)
        block.storeBytes(of: size, toByteOffset: 8, as: Int.self)
        return block + h
    }

    package func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        let block = p - Self.header
        let c = block.load(as: Int.self)
        if c > 0 && cached < maxCachedBlocks {
            block.storeBytes(of: heads[c], as: UnsafeMutableRawPointer?.self)
            heads[c] = block
            cached += 1
        } else {
            Glibc.free(block)
        }
    }

    /// Grows or shrinks in place while the size stays within the block's class; otherwise a
    /// new block with the old contents.
    package func reallocate(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let p else { return allocate(size) }
        let block = p - Self.header
        let c = block.load(as: Int.self)
        let old = block.load(fromByteOffset: 8, as: Int.self)
        if c > 0 && size <= c * Self.granule && size > 0 {
            block.storeBytes(of: size, toByteOffset: 8, as: Int.self)
            return p
        }
        guard let n = allocate(size) else { return nil }
        n.copyMemory(from: p, byteCount: min(old, size))
        release(p)
        return n
    }

    /// `calloc`: `n * size` zeroed bytes, nil on overflow.
    package func allocateZeroed(_ n: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        let (total, overflow) = n.multipliedReportingOverflow(by: size)
        guard !overflow, let p = allocate(total) else { return nil }
        p.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        return p
    }

    /// The allocator behind a C library's `user_data` pointer.
    @inline(__always)
    package static func from(_ ud: UnsafeMutableRawPointer?) -> SizeClassAllocator? {
        guard let ud else { return nil }
        return Unmanaged<SizeClassAllocator>.fromOpaque(ud).takeUnretainedValue()
    }

    /// The pointer to hand to C as `user_data` (unretained: the owner keeps the allocator alive).
    package var userData: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}
