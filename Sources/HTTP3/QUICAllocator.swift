internal import CNGHTTP3
internal import CNGTCP2
#if canImport(Glibc)
import Glibc
#endif

/// The allocator ngtcp2 and nghttp3 use for every connection of one endpoint (`ngtcp2_mem`,
/// `nghttp3_mem`): size-class free lists in front of `malloc`, so the objects both libraries
/// create and free for every request and packet (streams, frame chains, retransmission
/// entries, QPACK buffers, header buffers) are recycled instead of hitting the heap. Same
/// design as HTTP/2's `NGHTTP2Allocator`.
///
/// Blocks up to `maxPooledSize` bytes are rounded up to 16-byte classes and kept on a free
/// list when freed (at most `maxCachedBlocks` in all); larger ones go straight to `malloc`.
/// Every block has a 16-byte header with its class (0 = unpooled) and size. An endpoint runs on
/// one loop thread, so there is no locking. Both libraries keep a *pointer* to their mem
/// struct, so the structs live in memory this object owns; every connection holds the
/// allocator strongly and frees its ngtcp2/nghttp3 objects before letting go of it.
final class QUICAllocator {
    static let header = 16
    static let granule = 16
    static let maxPooledSize = 2048
    static let classes = maxPooledSize / granule + 1
    let maxCachedBlocks: Int

    private let heads: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private var cached = 0
    /// The `ngtcp2_mem` to pass to `ngtcp2_conn_server_new` (stable address).
    let ngtcp2: UnsafeMutablePointer<ngtcp2_mem>
    /// The `nghttp3_mem` to pass to `nghttp3_conn_server_new` (stable address).
    let nghttp3: UnsafeMutablePointer<nghttp3_mem>

    init(maxCachedBlocks: Int = 8192) {
        self.maxCachedBlocks = maxCachedBlocks
        heads = .allocate(capacity: QUICAllocator.classes)
        heads.initialize(repeating: nil, count: QUICAllocator.classes)
        ngtcp2 = .allocate(capacity: 1)
        nghttp3 = .allocate(capacity: 1)
        let me = Unmanaged.passUnretained(self).toOpaque()
        ngtcp2.initialize(to: ngtcp2_mem(user_data: me, malloc: qMalloc, free: qFree, calloc: qCalloc, realloc: qRealloc))
        nghttp3.initialize(
            to: nghttp3_mem(user_data: me, malloc: hMalloc, free: hFree, calloc: hCalloc, realloc: hRealloc))
    }

    deinit {
        for c in 0..<QUICAllocator.classes {
            var p = heads[c]
            while let b = p {
                p = b.load(as: UnsafeMutableRawPointer?.self)
                Glibc.free(b)
            }
        }
        heads.deallocate()
        ngtcp2.deallocate()
        nghttp3.deallocate()
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let h = QUICAllocator.header
        if size <= QUICAllocator.maxPooledSize {
            let c = max(1, (size + QUICAllocator.granule - 1) / QUICAllocator.granule)
            let block: UnsafeMutableRawPointer
            if let b = heads[c] {
                heads[c] = b.load(as: UnsafeMutableRawPointer?.self)
                cached -= 1
                block = b
            } else {
                guard let b = Glibc.malloc(h + c * QUICAllocator.granule) else { return nil }
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

    func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        let block = p - QUICAllocator.header
        let c = block.load(as: Int.self)
        if c > 0 && cached < maxCachedBlocks {
            block.storeBytes(of: heads[c], as: UnsafeMutableRawPointer?.self)
            heads[c] = block
            cached += 1
        } else {
            Glibc.free(block)
        }
    }

    func reallocate(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let p else { return allocate(size) }
        let block = p - QUICAllocator.header
        let c = block.load(as: Int.self)
        let old = block.load(fromByteOffset: 8, as: Int.self)
        if c > 0 && size <= c * QUICAllocator.granule && size > 0 {
            block.storeBytes(of: size, toByteOffset: 8, as: Int.self)
            return p
        }
        guard let n = allocate(size) else { return nil }
        n.copyMemory(from: p, byteCount: min(old, size))
        release(p)
        return n
    }

    func allocateZeroed(_ n: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        let (total, overflow) = n.multipliedReportingOverflow(by: size)
        guard !overflow, let p = allocate(total) else { return nil }
        p.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        return p
    }
}

@inline(__always)
private func allocator(_ ud: UnsafeMutableRawPointer?) -> QUICAllocator? {
    guard let ud else { return nil }
    return Unmanaged<QUICAllocator>.fromOpaque(ud).takeUnretainedValue()
}

private let qMalloc: ngtcp2_malloc = { size, ud in allocator(ud)?.allocate(size) }
private let qFree: ngtcp2_free = { p, ud in allocator(ud)?.release(p) }
private let qCalloc: ngtcp2_calloc = { n, size, ud in allocator(ud)?.allocateZeroed(n, size) }
private let qRealloc: ngtcp2_realloc = { p, size, ud in allocator(ud)?.reallocate(p, size) }

private let hMalloc: nghttp3_malloc = { size, ud in allocator(ud)?.allocate(size) }
private let hFree: nghttp3_free = { p, ud in allocator(ud)?.release(p) }
private let hCalloc: nghttp3_calloc = { n, size, ud in allocator(ud)?.allocateZeroed(n, size) }
private let hRealloc: nghttp3_realloc = { p, size, ud in allocator(ud)?.reallocate(p, size) }
