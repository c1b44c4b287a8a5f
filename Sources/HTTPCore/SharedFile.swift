#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// A read-only open file shared by the open-file cache that opened it and every response
/// still sending it. The descriptor closes when the last reference goes, so a file evicted
/// from the cache (or replaced on disk) while a large response is in flight keeps being read
/// from the inode the response started with.
package final class SharedFile: Sendable {
    /// The descriptor (read-only, close-on-exec); valid while the object lives.
    package let fd: Int32

    /// Takes ownership of `fd`.
    package init(owning fd: Int32) {
        self.fd = fd
    }

    deinit {
        _ = Glibc.close(fd)
    }

    /// pread(2) of up to `count` bytes at `offset` (EINTR retried). Returns the bytes read,
    /// 0 at end of file, or -1 with `errno` set.
    @inline(__always)
    package func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64) -> Int {
        while true {
            let n = pread(fd, buffer, count, off_t(offset))
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// Reads `count` bytes at `offset`, looping over short reads. Returns the bytes read:
    /// fewer than `count` only when the file ended first (it shrank) or a read failed.
    package func readFully(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64) -> Int {
        var done = 0
        while done < count {
            let n = read(into: buffer + done, count: count - done, at: offset + Int64(done))
            if n <= 0 { break }
            done += n
        }
        return done
    }
}
