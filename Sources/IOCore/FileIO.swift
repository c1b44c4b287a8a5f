#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes for config-time work (no Foundation).
package enum FileIO {
    /// Reads a whole file.
    package static func readAll(_ path: String, limit: Int = 64 << 20) throws(IOError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw IOError("open \(path)", errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError("read \(path)", errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw IOError("read \(path)", errno: EFBIG) }
        }
        return out
    }

    /// True when `path` exists and is a regular file.
    package static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Writes `bytes` to `path` atomically (temp file + rename) with `mode`.
    package static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(IOError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw IOError("open \(tmp)", errno: errno) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(tmp)
                throw IOError("write \(tmp)", errno: e)
            }
            off += n
        }
        if fsync(fd) != 0 { let e = errno; close(fd); unlink(tmp); throw IOError("fsync \(tmp)", errno: e) }
        close(fd)
        if rename(tmp, path) != 0 { let e = errno; unlink(tmp); throw IOError("rename \(path)", errno: e) }
    }

    /// Writes a string to a file descriptor completely (stderr messages).
    package static func writeAll(_ fd: Int32, _ s: String) {
        var s = s
        s.withUTF8 { b in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
