internal import CNGHTTP3
internal import CNGTCP2
import IOCore

/// The allocator ngtcp2 and nghttp3 use for every connection of one endpoint: the shared
/// size-class free lists (`SizeClassAllocator`, as for HTTP/2) behind an `ngtcp2_mem` and an
/// `nghttp3_mem`. Both libraries keep a *pointer* to their mem struct, so the structs live in
/// memory this object owns; every connection holds the allocator strongly and frees its
/// ngtcp2/nghttp3 objects before letting go of it. An endpoint runs on one loop thread.
final class QUICAllocator {
    let blocks: SizeClassAllocator
    /// The `ngtcp2_mem` to pass to `ngtcp2_conn_server_new` (stable address).
    let ngtcp2: UnsafeMutablePointer<ngtcp2_mem>
    /// The `nghttp3_mem` to pass to `nghttp3_conn_server_new` (stable address).
    let nghttp3: UnsafeMutablePointer<nghttp3_mem>

    init(maxCachedBlocks: Int = 8192) {
        blocks = SizeClassAllocator(maxPooledSize: 2048, maxCachedBlocks: maxCachedBlocks)
        ngtcp2 = .allocate(capacity: 1)
        nghttp3 = .allocate(capacity: 1)
        let ud = blocks.userData
        ngtcp2.initialize(to: ngtcp2_mem(user_data: ud, malloc: qMalloc, free: qFree, calloc: qCalloc, realloc: qRealloc))
        nghttp3.initialize(
            to: nghttp3_mem(user_data: ud, malloc: hMalloc, free: hFree, calloc: hCalloc, realloc: hRealloc))
    }

    deinit {
        ngtcp2.deallocate()
        nghttp3.deallocate()
    }
}

private let qMalloc: ngtcp2_malloc = { size, ud in SizeClassAllocator.from(ud)?.allocate(size) }
private let qFree: ngtcp2_free = { p, ud in SizeClassAllocator.from(ud)?.release(p) }
private let qCalloc: ngtcp2_calloc = { n, size, ud in SizeClassAllocator.from(ud)?.allocateZeroed(n, size) }
private let qRealloc: ngtcp2_realloc = { p, size, ud in SizeClassAllocator.from(ud)?.reallocate(p, size) }

private let hMalloc: nghttp3_malloc = { size, ud in SizeClassAllocator.from(ud)?.allocate(size) }
private let hFree: nghttp3_free = { p, ud in SizeClassAllocator.from(ud)?.release(p) }
private let hCalloc: nghttp3_calloc = { n, size, ud in SizeClassAllocator.from(ud)?.allocateZeroed(n, size) }
private let hRealloc: nghttp3_realloc = { p, size, ud in SizeClassAllocator.from(ud)?.reallocate(p, size) }
