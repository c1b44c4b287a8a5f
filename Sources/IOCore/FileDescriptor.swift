#if canImport(Glibc)
import Glibc
#endif

/// Sole owner of a file descriptor: closed exactly once, when the owner goes away.
package struct FileDescriptor: ~Copyable {
    /// The raw descriptor number, valid while `self` lives.
    package let raw: Int32

    /// Takes ownership of `raw`.
    package init(owning raw: Int32) {
        self.raw = raw
    }

    /// Gives up ownership without closing.
    package consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit {
        _ = Glibc.close(raw)
    }
}

/// Flags helpers that act on raw descriptors.
package enum FDFlags {
    /// Sets `O_NONBLOCK`.
    package static func setNonBlocking(_ fd: Int32) throws(IOError) {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 { throw IOError("fcntl(F_GETFL)", errno: errno) }
        if flags & O_NONBLOCK == 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 {
            throw IOError("fcntl(F_SETFL)", errno: errno)
        }
    }

    /// Sets `FD_CLOEXEC`.
    package static func setCloseOnExec(_ fd: Int32) throws(IOError) {
        let flags = fcntl(fd, F_GETFD)
        if flags < 0 { throw IOError("fcntl(F_GETFD)", errno: errno) }
        if flags & FD_CLOEXEC == 0, fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0 {
            throw IOError("fcntl(F_SETFD)", errno: errno)
        }
    }
}
