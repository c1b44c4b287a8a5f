internal import CNGHTTP2
import IOCore

/// nghttp2's allocator for one session: the shared size-class free lists (IOCore's
/// `SizeClassAllocator`, with its HTTP/2 defaults: classes up to 1 KiB, 512 cached blocks), so
/// the per-stream objects nghttp2 creates and frees for every request (the stream, its
/// outbound HEADERS and DATA items, the copied header array, decoded header buffers) are
/// recycled — with it a steady-state request makes no heap call at all (see
/// `MallocCountTests`). The allocator must outlive its session (`NGHTTP2Session` frees the
/// session first).
typealias NGHTTP2Allocator = SizeClassAllocator

extension SizeClassAllocator {
    /// The `nghttp2_mem` to pass to `nghttp2_session_server_new3` (nghttp2 copies it).
    var mem: nghttp2_mem {
        nghttp2_mem(mem_user_data: userData, malloc: h2Malloc, free: h2Free, calloc: h2Calloc, realloc: h2Realloc)
    }
}

private let h2Malloc: nghttp2_malloc = { size, ud in SizeClassAllocator.from(ud)?.allocate(size) }
private let h2Free: nghttp2_free = { p, ud in SizeClassAllocator.from(ud)?.release(p) }
private let h2Calloc: nghttp2_calloc = { n, size, ud in SizeClassAllocator.from(ud)?.allocateZeroed(n, size) }
private let h2Realloc: nghttp2_realloc = { p, size, ud in SizeClassAllocator.from(ud)?.reallocate(p, size) }
