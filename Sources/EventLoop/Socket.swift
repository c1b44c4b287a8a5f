#if canImport(Glibc)
import Glibc
#endif
import CLinux
import IOCore

/// Socket operations on raw descriptors. Ownership stays with the caller
/// (`FileDescriptor` or a connection object that closes in `deinit`).
package enum Socket {
    /// Reads into `buffer`'s free space (growing it to at least `minimumSpace`).
    /// Returns `.done(0)` on end of stream.
    @inline(__always)
    package static func read(_ fd: Int32, into buffer: ByteBuffer, minimumSpace: Int = 2048) throws(IOError) -> IOResult {
        buffer.reserveWritable(minimumSpace)
        let space = buffer.writableBytes
        let p = buffer.writePointer
        let r = try syscall("read") { Glibc.read(fd, p, space) }
        if case .done(let n) = r, n > 0 { buffer.commit(n) }
        return r
    }

    /// Writes as much of `buffer`'s readable bytes as the kernel takes, consuming them.
    @inline(__always)
    package static func write(_ fd: Int32, from buffer: ByteBuffer) throws(IOError) -> IOResult {
        let n = buffer.readableBytes
        if n == 0 { return .done(0) }
        let p = buffer.base + buffer.readerIndex
        let r = try syscall("write") { Glibc.write(fd, p, n) }
        if case .done(let w) = r { buffer.consume(w) }
        return r
    }

    /// Writes raw bytes.
    @inline(__always)
    package static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(IOError) -> IOResult {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .done(0) }
        return try syscall("write") { Glibc.write(fd, base, bytes.count) }
    }

    /// Gathers writes from several buffers with one `writev`.
    package static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int) throws(IOError) -> IOResult {
        try syscall("writev") { Glibc.writev(fd, iov, Int32(count)) }
    }

    /// Sends `count` bytes of file `fileFD` from `offset` (advanced) with sendfile(2).
    package static func sendfile(_ fd: Int32, file fileFD: Int32, offset: inout Int64, count: Int) throws(IOError) -> IOResult {
        var off = offset
        let r = try syscall("sendfile") { berth_sendfile(fd, fileFD, &off, count) }
        offset = off
        return r
    }

    /// Accepts one connection: non-blocking and close-on-exec. Returns the fd; the peer address
    /// is written to `peer` and its length to `peerLength` (only the first `peerLength` bytes
    /// are valid: an unnamed unix peer has just the family).
    @inline(__always)
    package static func accept(_ fd: Int32, peer: UnsafeMutablePointer<sockaddr_storage>, peerLength: inout socklen_t) throws(IOError) -> IOResult {
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        defer { peerLength = len }
        return try peer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) -> IOResult in
            try syscall("accept4") { Int(berth_accept4(fd, sa, &len, berth_sock_nonblock_cloexec())) }
        }
    }

    /// Sets an integer socket option.
    package static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(IOError) {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError("setsockopt", errno: errno)
        }
    }

    /// Reads an integer socket option.
    package static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(IOError) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, level, name, &v, &len) != 0 { throw IOError("getsockopt", errno: errno) }
        return v
    }

    /// The local address of a socket.
    package static func localAddress(_ fd: Int32) -> SocketAddress? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { return nil }
        return withUnsafeBytes(of: &ss) { SocketAddress(storage: $0.baseAddress!, length: Int(len)) }
    }

    /// Creates, binds and listens a TCP socket (SO_REUSEADDR; IPV6_V6ONLY on for IPv6 so that
    /// `0.0.0.0` and `[::]` can both be bound, as Go does).
    package static func listenTCP(_ address: SocketAddress, dualStack: Bool = false, backlog: Int32 = 4096) throws(IOError) -> FileDescriptor {
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | berth_sock_nonblock_cloexec(), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        let owned = FileDescriptor(owning: fd)
        try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if address.family == AF_INET6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, dualStack ? 0 : 1) }
        let rc = address.withSockAddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc != 0 { throw IOError("bind \(address)", errno: errno) }
        if Glibc.listen(fd, backlog) != 0 { throw IOError("listen \(address)", errno: errno) }
        return owned
    }

    /// Creates, binds and listens a unix stream socket at `path` (replacing a stale socket file).
    ///
    /// A socket file left at `path` is replaced only when it is stale (nobody accepts on it:
    /// connecting is refused), or when `replacingLive` says the live listener is this
    /// process's own (a reload changing the admin socket's mode). A live socket of another
    /// process is never taken over: that is EADDRINUSE. Other files are never removed.
    package static func listenUnix(path: String, mode: mode_t? = nil, backlog: Int32 = 128,
                                   replacingLive: Bool = false) throws(IOError) -> FileDescriptor {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | berth_sock_nonblock_cloexec(), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        let owned = FileDescriptor(owning: fd)
        if !path.hasPrefix("@") {
            var st = stat()
            if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK {
                if !replacingLive && isLiveUnixSocket(path) {
                    throw IOError("bind unix/\(path): another process is listening on it", errno: EADDRINUSE)
                }
                unlink(path)
            }
        }
        let rc = SocketAddress.unix(path: path).withSockAddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc != 0 { throw IOError("bind unix/\(path)", errno: errno) }
        if let mode, !path.hasPrefix("@"), chmod(path, mode) != 0 { throw IOError("chmod \(path)", errno: errno) }
        if Glibc.listen(fd, backlog) != 0 { throw IOError("listen unix/\(path)", errno: errno) }
        return owned
    }

    /// True when something accepts connections on the unix socket at `path` (a non-blocking
    /// connect succeeds, or the backlog is full); false when it is refused (a stale file).
    static func isLiveUnixSocket(_ path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | berth_sock_nonblock_cloexec(), 0)
        if fd < 0 { return false }
        defer { Glibc.close(fd) }
        let rc = SocketAddress.unix(path: path).withSockAddr { sa, len in Glibc.connect(fd, sa, len) }
        return rc == 0 || errno == EAGAIN || errno == EINPROGRESS
    }

    /// Connects a non-blocking TCP or unix socket; `inProgress` is set when the connection is
    /// still being established (wait for EPOLLOUT, then check SO_ERROR).
    package static func connect(_ address: SocketAddress, inProgress: inout Bool) throws(IOError) -> FileDescriptor {
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | berth_sock_nonblock_cloexec(), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        let owned = FileDescriptor(owning: fd)
        let rc = address.withSockAddr { sa, len in Glibc.connect(fd, sa, len) }
        if rc == 0 {
            inProgress = false
            return owned
        }
        let e = errno
        if e == EINPROGRESS || e == EAGAIN {
            inProgress = true
            return owned
        }
        throw IOError("connect \(address)", errno: e)
    }
}
