#if canImport(Glibc)
import Glibc
#endif
internal import CLinux
import HTTPCore
import IOCore
import Synchronization

/// What the file server found at a path.
struct FSNode {
    /// 0 when found, else the errno of the failed open (ENOENT, EXDEV for "escapes the root"…).
    var error: Int32 = ENOENT
    var isDir = false
    /// The open file (regular file or directory), shared with the cache.
    var file: SharedFile? = nil
    var size: Int64 = 0
    var mtimeSec: Int = 0
    var mtimeNsec: Int = 0
    var mode: UInt32 = 0
    var dev: UInt64 = 0
    var ino: UInt64 = 0

    init() {}

    init(error: Int32) { self.error = error }

    /// Fills size, times and identity from `st`.
    mutating func update(_ st: stat) {
        size = Int64(st.st_size)
        mtimeSec = Int(st.st_mtim.tv_sec)
        mtimeNsec = Int(st.st_mtim.tv_nsec)
        mode = UInt32(st.st_mode)
        dev = UInt64(st.st_dev)
        ino = UInt64(st.st_ino)
        isDir = (st.st_mode & S_IFMT) == S_IFDIR
    }
}

/// Opens a path beneath a root directory without ever leaving it (the safety core of the
/// file server; caddy-behavior §11 lists what Caddy does instead).
///
/// The request path has already been cleaned lexically (no `..`, no empty or `.` segments,
/// no leading `/`), exactly as Caddy's SanitizedPathJoin does, so lexical traversal cannot
/// escape. What remains are symbolic links: Caddy follows them anywhere; Berth, by default,
/// resolves every component — symlinks included — with the kernel's `openat2(2)`
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a link that stays inside the root (relative, no
/// `..` above it) is followed, one that is absolute or climbs out fails with EXDEV, which the
/// handler answers like a missing file (404). There is no window between check and use: the
/// kernel resolves and opens in one call.
///
/// Kernels without openat2 (before 5.6), or seccomp profiles that refuse it (ENOSYS/EPERM),
/// get the same semantics from a component-by-component walk: each component is opened with
/// `O_PATH | O_NOFOLLOW` relative to the previous directory's descriptor, symlinks are read
/// with readlinkat(2) and expanded only when relative and staying beneath the root (at most
/// 40, as the kernel), and the last component is opened with `O_NOFOLLOW`.
///
/// With `follow_symlinks` (a Berth extension) the path is opened with plain openat(2)
/// relative to the root, which is Caddy's behaviour.
///
/// Files are opened `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`: O_NONBLOCK keeps a FIFO
/// planted in the root from blocking the event loop in open(2) (regular files ignore it).
enum FileResolver {
    static let openFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC

    /// 0: not probed, 1: openat2 works, 2: use the walk.
    private static let openat2State = Atomic<Int>(0)

    /// Tests force the component walk with this.
    static func forceWalk(_ on: Bool) {
        openat2State.store(on ? 2 : 0, ordering: .relaxed)
    }

    /// True when openat2 is in use (after the first open).
    static var usesOpenat2: Bool { openat2State.load(ordering: .relaxed) == 1 }

    /// Opens `path` (NUL-terminated, relative, already clean; empty means the root itself)
    /// beneath `root`. Returns the descriptor or `-errno`.
    static func open(root: Int32, path: UnsafePointer<CChar>, follow: Bool) -> Int32 {
        let p = path.pointee == 0 ? dotPath : path
        if follow {
            let fd = retrying { openat(root, p, openFlags) }
            return fd >= 0 ? fd : -errno
        }
        let state = openat2State.load(ordering: .relaxed)
        if state != 2 {
            let fd = retrying { berth_openat2(root, p, openFlags, berth_resolve_beneath()) }
            if fd >= 0 {
                if state == 0 { openat2State.store(1, ordering: .relaxed) }
                return fd
            }
            let e = errno
            if !(e == ENOSYS || (e == EPERM && state == 0)) { return -e }
            openat2State.store(2, ordering: .relaxed)
        }
        return walk(root: root, path: p)
    }

    nonisolated(unsafe) private static let dotPath: UnsafePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 2)
        p[0] = CChar(UInt8(ascii: "."))
        p[1] = 0
        return UnsafePointer(p)
    }()

    @inline(__always)
    private static func retrying(_ body: () -> Int32) -> Int32 {
        while true {
            let r = body()
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }

    /// The component walk (see the type's comment). Allocates; only used without openat2.
    static func walk(root: Int32, path: UnsafePointer<CChar>) -> Int32 {
        var pending: [[UInt8]] = components(Array(UnsafeRawBufferPointer(start: path, count: strlen(path))))
        pending.reverse()  // pop from the end
        var dirs: [Int32] = []  // descriptors of the directories below the root we are in
        defer { for d in dirs { close(d) } }
        var links = 0
        if pending.isEmpty {
            let fd = retrying { openat(root, dotPath, openFlags) }
            return fd >= 0 ? fd : -errno
        }
        while let comp = pending.popLast() {
            let cur = dirs.last ?? root
            if comp == [UInt8(ascii: ".")] { continue }
            if comp == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                guard let d = dirs.popLast() else { return -EXDEV }
                close(d)
                continue
            }
            let isLast = pending.isEmpty
            let fd: Int32 = comp.withUnsafeBufferPointer { b in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
                    for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
                    c[b.count] = 0
                    return retrying { openat(cur, c.baseAddress!, berth_o_path() | O_NOFOLLOW | O_CLOEXEC) }
                }
            }
            if fd < 0 { return -errno }
            var st = stat()
            if fstat(fd, &st) != 0 {
                let e = errno
                close(fd)
                return -e
            }
            let kind = st.st_mode & S_IFMT
            if kind == S_IFLNK {
                close(fd)
                links += 1
                if links > 40 { return -ELOOP }
                guard let target = readLink(cur, comp) else { return -errno }
                if target.first == UInt8(ascii: "/") || target.isEmpty { return -EXDEV }
                pending.append(contentsOf: components(target).reversed())
                continue
            }
            if isLast {
                close(fd)
                let r: Int32 = comp.withUnsafeBufferPointer { b in
                    withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
                        for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
                        c[b.count] = 0
                        return retrying { openat(cur, c.baseAddress!, openFlags | O_NOFOLLOW) }
                    }
                }
                return r >= 0 ? r : -errno
            }
            if kind != S_IFDIR {
                close(fd)
                return -ENOTDIR
            }
            dirs.append(fd)
        }
        // The path ended in `..` or a symlink to a directory: open the directory we are in.
        let cur = dirs.last ?? root
        let r = retrying { openat(cur, dotPath, openFlags) }
        return r >= 0 ? r : -errno
    }

    static func components(_ p: [UInt8]) -> [[UInt8]] {
        p.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { Array($0) }
    }

    static func readLink(_ dir: Int32, _ name: [UInt8]) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n: Int = name.withUnsafeBufferPointer { b in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { c in
                for i in 0..<b.count { c[i] = CChar(bitPattern: b[i]) }
                c[b.count] = 0
                return buf.withUnsafeMutableBytes { readlinkat(dir, c.baseAddress!, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096) }
            }
        }
        guard n >= 0 else { return nil }
        return Array(buf[0..<n])
    }
}
