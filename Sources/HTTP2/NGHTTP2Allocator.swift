internal import CNGHTTP2
import Glibc

/// nghttp2's allocator for one session (`nghttp2_mem`): size-class free lists in front of
/// `malloc`, so the per-stream objects nghttp2 creates and frees for every request (the
/// stream, its outbound HEADERS and DATA items, the copied header array, decoded header
/// buffers) are recycled instead of hitting the heap — with it a steady-state request makes
/// no heap call at all (see `MallocCountTests`).
///
/// Blocks up to `maxPooledSize` bytes are rounded up to 16-byte classes and kept on a free
/// list when freed (at most `maxCachedBlocks` in all); larger ones go straight to `malloc`.
/// Every block has a 16-byte header holding its class (0 = unpooled) and size, which keeps
/// the payload 16-byte aligned like `malloc`'s. A session lives on one loop thread, so there
/// is no locking. The allocator must outlive its session (`NGHTTP2Session` frees the
/// session first).
final class NGHTTP2Allocator {
    static let header = 16
    static let granule = 16
    static let maxPooledSize = 1024
    static let classes = maxPooledSize / granule + 1
    let maxCachedBlocks: Int

    private let heads: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private var cached = 0

    init(maxCachedBlocks: Int = 512) {
        self.maxCachedBlocks = maxCachedBlocks
        heads = .allocate(capacity: NGHTTP2Allocator.classes)
        heads.initialize(repeating: nil, count: NGHTTP2Allocator.classes)
    }

    deinit {
        for c in 0..<NGHTTP2Allocator.classes {
            var p = heads[c]
            while let b = p {
                p = b.load(as: UnsafeMutableRawPointer?.self)
                Glibc.free(b)
            }
        }
        heads.deallocate()
    }

    /// The `nghttp2_mem` to pass to `nghttp2_session_server_new3` (nghttp2 copies it).
    var mem: nghttp2_mem {
        nghttp2_mem(
            mem_user_data: Unmanaged.passUnretained(self).toOpaque(), malloc: h2Malloc, free: h2Free,
            calloc: h2Calloc, realloc: h2Realloc)
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let h = NGHTTP2Allocator.header
        if size <= NGHTTP2Allocator.maxPooledSize {
            let c = max(1, (size + NGHTTP2Allocator.granule - 1) / NGHTTP2Allocator.granule)
            let block: UnsafeMutableRawPointer
            if let b = heads[c] {
                heads[c] = b.load(as: UnsafeMutableRawPointer?.self)
                cached -= 1
                block = b
            } else {
                guard let b = Glibc.malloc(h + c * NGHTTP2Allocator.granule) else { return nil }
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
        let block = p - NGHTTP2Allocator.header
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
        let old = (p - NGHTTP2Allocator.header).load(fromByteOffset: 8, as: Int.self)
        guard let n = allocate(size) else { return nil }
        n.copyMemory(from: p, byteCount: min(old, size))
        release(p)
        return n
    }
}

/// The allocator behind `mem_user_data` (nghttp2 copies it from `mem` into the session, so
/// it is never NULL; the trampolines still check).
@inline(__always)
private func allocator(_ ud: UnsafeMutableRawPointer?) -> NGHTTP2Allocator? {
    guard let ud else { return nil }
    return Unmanaged<NGHTTP2Allocator>.fromOpaque(ud).takeUnretainedValue()
}

private let h2Malloc: nghttp2_malloc = { size, ud in allocator(ud)?.allocate(size) }

private let h2Free: nghttp2_free = { p, ud in allocator(ud)?.release(p) }

private let h2Calloc: nghttp2_calloc = { n, size, ud in
    let (total, overflow) = n.multipliedReportingOverflow(by: size)
    guard !overflow, let p = allocator(ud)?.allocate(total) else { return nil }
    p.initializeMemory(as: UInt8.self, repeating: 0, count: total)
    return p
}

private let h2Realloc: nghttp2_realloc = { p, size, ud in allocator(ud)?.reallocate(p, size) }
