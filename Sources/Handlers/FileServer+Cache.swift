#if canImport(Glibc)
import Glibc
#endif
internal import CLinux
import HTTPCore
import IOCore

/// Per-thread state of the file server: scratch buffers and a small open-file cache (like
/// nginx's `open_file_cache`), one per event-loop thread, so the hot path takes no lock and
/// allocates nothing.
///
/// Cache rules:
/// - An entry maps (root, cleaned relative path, symlink policy) to an open descriptor (file
///   or directory) or to a refusal (ENOENT, EACCES, EXDEV).
/// - A hit younger than `revalidateNanos` (1 s) is used as is, except that a file's
///   descriptor is fstat(2)-ed on every use, so size, mtime — and so ETag, Last-Modified and
///   Content-Length — are always those of the bytes actually sent, even when a file is
///   rewritten in place.
/// - Older hits are re-resolved (one openat2 + fstat): if the path now names another inode
///   (a deploy that renamed a new file over the old one, a deleted or created file) the entry
///   is replaced. A file created where a 404 was cached is served within a second.
/// - Responses hold their own reference to the descriptor (`SharedFile`), so replacing or
///   evicting an entry never disturbs a transfer in flight.
/// - Roots are reopened when the root path stops naming the same directory (a symlink swap
///   `current -> release-2`), checked at most once a second too; entries of the old root are
///   never matched again.
/// - Capacity: 1/16 of the soft `RLIMIT_NOFILE` per thread, between 16 and 1024 entries, in
///   4-way sets evicting the least recently used. EMFILE on open empties the cache and retries.
///
/// Cold misses open(2) on the loop thread, as nginx does: a static site is normally in the
/// page cache, and misses are bounded by the cache size.
final class FileServerLocal {
    static let revalidateNanos: UInt64 = 1_000_000_000

    // Scratch buffers (see FileServerHandler.handle for their roles).
    let path = ByteBuffer(capacity: 512)
    let rel = ByteBuffer(capacity: 512)
    let abs = ByteBuffer(capacity: 512)
    let orig = ByteBuffer(capacity: 256)
    let work = ByteBuffer(capacity: 512)
    let name = ByteBuffer(capacity: 128)

    struct Root {
        var path: [UInt8]
        /// `filepath.Abs(root)` cleaned: the prefix of absolute file names for `hide`.
        var absolute: [UInt8]
        var fd: Int32
        var dev: UInt64
        var ino: UInt64
        var checked: UInt64
        var generation: UInt32
        var lastUse: UInt64
        /// errno when the root could not be opened (then fd is -1).
        var error: Int32
    }
    var roots: [Root] = []
    private var generation: UInt32 = 0
    private let cwd: [UInt8]

    struct Slot {
        var hash = 0
        var generation: UInt32 = 0
        var follow = false
        var key: [UInt8] = []
        var node = FSNode()
        var checked: UInt64 = 0
        var lastUse: UInt64 = 0
    }
    private var slots: [Slot]
    private let setMask: Int
    static let ways = 4

    init() {
        var lim = rlimit()
        var entries = 256
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim) == 0 {
            let soft = lim.rlim_cur > UInt(1 << 30) ? 1 << 20 : Int(lim.rlim_cur)
            entries = min(1024, max(16, soft / 16))
        }
        var sets = 1
        while sets * FileServerLocal.ways < entries { sets <<= 1 }
        slots = [Slot](repeating: Slot(), count: sets * FileServerLocal.ways)
        setMask = sets - 1
        cwd = FileServerLocal.currentDirectory()
        roots.reserveCapacity(8)
    }

    deinit {
        for r in roots where r.fd >= 0 { close(r.fd) }
    }

    /// This thread's instance.
    static var current: FileServerLocal {
        if let p = pthread_getspecific(key) { return Unmanaged<FileServerLocal>.fromOpaque(p).takeUnretainedValue() }
        let l = FileServerLocal()
        pthread_setspecific(key, Unmanaged.passRetained(l).toOpaque())
        return l
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            if let p { Unmanaged<FileServerLocal>.fromOpaque(p).release() }
        }
        return k
    }()

    static func currentDirectory() -> [UInt8] {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return Array("/".utf8) }
        return Array(buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })
    }

    // MARK: Roots

    /// The open root for `path` (a directory path after placeholder expansion; "." when
    /// empty), reopened when stale. Returns its index in `roots`.
    func root(_ path: UnsafeRawBufferPointer, now: UInt64) -> Int {
        var idx = -1
        for i in roots.indices where roots[i].path.count == path.count {
            if path.isEmpty || roots[i].path.withUnsafeBytes({ memcmp($0.baseAddress!, path.baseAddress!, path.count) == 0 }) {
                idx = i
                break
            }
        }
        if idx >= 0 {
            roots[idx].lastUse = now
            if now &- roots[idx].checked < FileServerLocal.revalidateNanos { return idx }
            roots[idx].checked = now
            if stillSame(roots[idx]) { return idx }
            if roots[idx].fd >= 0 { close(roots[idx].fd) }
            roots[idx] = openRoot(Array(path), now)
            return idx
        }
        let r = openRoot(Array(path), now)
        if roots.count < 8 {
            roots.append(r)
            return roots.count - 1
        }
        var victim = 0
        for i in roots.indices where roots[i].lastUse < roots[victim].lastUse { victim = i }
        if roots[victim].fd >= 0 { close(roots[victim].fd) }
        roots[victim] = r
        return victim
    }

    private func stillSame(_ r: Root) -> Bool {
        var st = stat()
        let ok = withCString(r.path) { stat($0, &st) == 0 }
        if !ok { return r.fd < 0 && r.error == errno }
        return r.fd >= 0 && UInt64(st.st_dev) == r.dev && UInt64(st.st_ino) == r.ino
    }

    private func openRoot(_ path: [UInt8], _ now: UInt64) -> Root {
        generation &+= 1
        let fd = withCString(path) { open($0, berth_o_path() | O_DIRECTORY | O_CLOEXEC) }
        let e = fd < 0 ? errno : 0
        var st = stat()
        if fd >= 0 { _ = fstat(fd, &st) }
        return Root(path: path, absolute: absolutePath(path), fd: fd, dev: UInt64(st.st_dev), ino: UInt64(st.st_ino),
                    checked: now, generation: generation, lastUse: now, error: e)
    }

    /// Go's `filepath.Abs`: joined with the working directory when relative, then cleaned.
    func absolutePath(_ p: [UInt8]) -> [UInt8] {
        let joined = p.first == UInt8(ascii: "/") ? p : cwd + [UInt8(ascii: "/")] + p
        let out = ByteBuffer(capacity: joined.count + 2)
        joined.withUnsafeBytes { CleanPath.goClean($0, into: out) }
        return out.readableArray()
    }

    private func withCString<R>(_ b: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
            for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
            c[b.count] = 0
            return body(c.baseAddress!)
        }
    }

    // MARK: Files

    /// Finds `rel` (clean, relative, no NUL; empty for the root itself) beneath root `ri`.
    func lookup(root ri: Int, _ rel: UnsafeRawBufferPointer, follow: Bool, now: UInt64) -> FSNode {
        let root = roots[ri]
        if root.fd < 0 {
            // Caddy stats root/path: a missing root is a missing file.
            return FSNode(error: root.error == ENOTDIR ? (rel.isEmpty ? ENOENT : ENOTDIR) : root.error)
        }
        var h = ByteTable.hash(rel) &+ Int(root.generation) &* 31
        if follow { h = h &+ 1 }
        h &= Int.max
        let set = (h & setMask) * FileServerLocal.ways
        var hit = -1
        for i in set..<(set + FileServerLocal.ways) {
            let s = slots[i]
            if s.checked != 0 && s.hash == h && s.generation == root.generation && s.follow == follow
                && s.key.count == rel.count
                && (rel.isEmpty || s.key.withUnsafeBytes { memcmp($0.baseAddress!, rel.baseAddress!, rel.count) == 0 })
            {
                hit = i
                break
            }
        }
        if hit >= 0 {
            slots[hit].lastUse = now
            if now &- slots[hit].checked < FileServerLocal.revalidateNanos {
                return refreshed(hit)
            }
            var fresh = resolve(root.fd, rel, follow: follow)
            let old = slots[hit].node
            if fresh.error == 0 && old.error == 0 && fresh.dev == old.dev && fresh.ino == old.ino {
                // Same inode: keep the descriptor we have, drop the new one.
                fresh.file = old.file
            }
            slots[hit].node = fresh
            slots[hit].checked = now
            return fresh
        }
        let node = resolve(root.fd, rel, follow: follow)
        if node.error == 0 || node.error == ENOENT || node.error == EXDEV || node.error == EACCES || node.error == ENOTDIR {
            var victim = set
            for i in set..<(set + FileServerLocal.ways) {
                if slots[i].checked == 0 {
                    victim = i
                    break
                }
                if slots[i].lastUse < slots[victim].lastUse { victim = i }
            }
            slots[victim] = Slot(hash: h, generation: root.generation, follow: follow, key: Array(rel), node: node,
                                 checked: now, lastUse: now)
        }
        return node
    }

    /// A fresh hit: fstat the descriptor so the metadata is current.
    @inline(__always)
    private func refreshed(_ i: Int) -> FSNode {
        guard slots[i].node.error == 0, let f = slots[i].node.file else { return slots[i].node }
        var st = stat()
        if fstat(f.fd, &st) == 0 { slots[i].node.update(st) }
        return slots[i].node
    }

    /// Opens and stats `rel`; EMFILE/ENFILE empty the cache and retry once.
    private func resolve(_ rootFD: Int32, _ rel: UnsafeRawBufferPointer, follow: Bool) -> FSNode {
        var attempt = 0
        while true {
            let fd: Int32 = withUnsafeTemporaryAllocation(of: CChar.self, capacity: rel.count + 1) { c in
                for i in 0..<rel.count { c[i] = CChar(bitPattern: rel[i]) }
                c[rel.count] = 0
                return FileResolver.open(root: rootFD, path: c.baseAddress!, follow: follow)
            }
            if fd < 0 {
                if (-fd == EMFILE || -fd == ENFILE) && attempt == 0 {
                    attempt += 1
                    purge()
                    continue
                }
                return FSNode(error: -fd)
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = errno
                close(fd)
                return FSNode(error: e)
            }
            let kind = st.st_mode & S_IFMT
            guard kind == S_IFREG || kind == S_IFDIR else {
                // FIFOs, sockets, devices: never served (Caddy would try); look missing.
                close(fd)
                return FSNode(error: ENOENT)
            }
            var node = FSNode()
            node.error = 0
            node.update(st)
            node.file = SharedFile(owning: fd)
            return node
        }
    }

    /// Drops every cached descriptor (responses in flight keep theirs).
    func purge() {
        for i in slots.indices { slots[i] = Slot() }
    }
}
