import Foundation
import Glibc
import IOCore
import Testing

@testable import EventLoop

@Suite("syscall wrapper")
struct SyscallTests {
    @Test func successReturnsDone() throws {
        #expect(try syscall("ok") { 7 } == .done(7))
        #expect(try syscall("zero") { 0 } == .done(0))
    }

    @Test func eagainAndEwouldblockAreWouldBlock() throws {
        #expect(try syscall("again") { errno = EAGAIN; return -1 } == .wouldBlock)
        #expect(try syscall("wouldblock") { errno = EWOULDBLOCK; return -1 } == .wouldBlock)
    }

    @Test func eintrIsRetried() throws {
        var calls = 0
        let r = try syscall("intr") { () -> Int in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 42
        }
        #expect(r == .done(42))
        #expect(calls == 3)
    }

    @Test func otherErrorsThrowWithOperationName() {
        #expect(throws: IOError("connect", errno: ECONNREFUSED)) { try syscall("connect") { errno = ECONNREFUSED; return -1 } }
        #expect(throws: IOError("read", errno: EIO)) { try syscall("read") { errno = EIO; return -1 } }
    }

    @Test func allowingBadFDThrowsEBADF() throws {
        #expect(throws: IOError("fstat", errno: EBADF)) { try syscallAllowingBadFD("fstat") { errno = EBADF; return -1 } }
        var calls = 0
        #expect(try syscallAllowingBadFD("x") { () -> Int in calls += 1; if calls == 1 { errno = EINTR; return -1 }; return 1 } == .done(1))
        #expect(try syscallAllowingBadFD("x") { errno = EAGAIN; return -1 } == .wouldBlock)
    }
}

@Suite("Socket helpers")
struct SocketTests {
    @Test func readWriteWouldBlockAndEOF() throws {
        let (a, b) = socketPair()
        defer { close(a) }
        let buf = ByteBuffer(capacity: 16)
        #expect(try Socket.read(a, into: buf) == .wouldBlock)
        #expect(buf.capacity >= 2048)  // minimumSpace reserved
        let out = ByteBuffer(capacity: 16)
        out.append("hello")
        #expect(try Socket.write(b, from: out) == .done(5))
        #expect(out.isEmpty)
        #expect(try Socket.write(b, from: out) == .done(0))  // nothing to write
        #expect(try Socket.read(a, into: buf) == .done(5))
        #expect(String(decoding: buf.readable, as: UTF8.self) == "hello")
        // Raw bytes and writev.
        #expect(try Array(" raw".utf8).withUnsafeBytes { try Socket.write(b, $0) } == .done(4))
        #expect(try Socket.write(b, UnsafeRawBufferPointer(start: nil, count: 0)) == .done(0))
        var x = Array(" one".utf8), y = Array(" two".utf8)
        let n = try x.withUnsafeMutableBytes { xp in
            try y.withUnsafeMutableBytes { yp in
                var iov = [iovec(iov_base: xp.baseAddress, iov_len: 4), iovec(iov_base: yp.baseAddress, iov_len: 4)]
                return try Socket.writev(b, &iov, count: 2)
            }
        }
        #expect(n == .done(8))
        #expect(try Socket.read(a, into: buf) == .done(12))
        #expect(String(decoding: buf.readable, as: UTF8.self) == "hello raw one two")
        close(b)
        #expect(try Socket.read(a, into: buf) == .done(0))
        #expect(buf.readableBytes == 17)  // EOF commits nothing
    }

    @Test func partialWriteConsumesOnlyWhatWasTaken() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        try Socket.setOption(b, SOL_SOCKET, SO_SNDBUF, 4096)
        let out = ByteBuffer(capacity: 16)
        out.append([UInt8](repeating: 0x61, count: 4 << 20))
        var total = 0
        while case .done(let n) = try Socket.write(b, from: out) { total += n; if out.isEmpty { break } }
        #expect(total > 0)
        #expect(total < 4 << 20)
        #expect(out.readableBytes == (4 << 20) - total)
        #expect(try Socket.write(b, from: out) == .wouldBlock)
    }

    @Test func errorsBecomeIOError() throws {
        let l = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let buf = ByteBuffer(capacity: 16)
        #expect(throws: IOError("read", errno: ENOTCONN)) { try Socket.read(l.raw, into: buf) }
    }

    @Test func options() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        try Socket.setOption(a, SOL_SOCKET, SO_KEEPALIVE, 1)
        #expect(try Socket.getOption(a, SOL_SOCKET, SO_KEEPALIVE) == 1)
        try Socket.setOption(a, SOL_SOCKET, SO_KEEPALIVE, 0)
        #expect(try Socket.getOption(a, SOL_SOCKET, SO_KEEPALIVE) == 0)
        #expect(try Socket.getOption(a, SOL_SOCKET, SO_TYPE) == Int32(SOCK_STREAM.rawValue))
        #expect(throws: IOError("setsockopt", errno: ENOPROTOOPT)) { try Socket.setOption(a, SOL_SOCKET, 9999, 1) }
        #expect(throws: IOError("getsockopt", errno: ENOPROTOOPT)) { try Socket.getOption(a, SOL_SOCKET, 9999) }
    }

    @Test func listenTCPIPv4() throws {
        let l = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let local = try #require(Socket.localAddress(l.raw))
        #expect(local.ipString == "127.0.0.1" && local.port > 0)
        #expect(try Socket.getOption(l.raw, SOL_SOCKET, SO_REUSEADDR) == 1)
        #expect(try Socket.getOption(l.raw, SOL_SOCKET, SO_ACCEPTCONN) == 1)
        #expect(fcntl(l.raw, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(l.raw, F_GETFD) & FD_CLOEXEC != 0)
        // Nothing pending yet.
        let peer = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
        defer { peer.deallocate() }
        var peerLength = socklen_t(0)
        #expect(try Socket.accept(l.raw, peer: peer, peerLength: &peerLength) == .wouldBlock)
        // A client connects; accept returns a non-blocking, close-on-exec fd and the peer.
        let c = blockingConnect(port: local.port)
        defer { close(c) }
        #expect(waitUntil { pollReadable(l.raw) })
        guard case .done(let fd) = try Socket.accept(l.raw, peer: peer, peerLength: &peerLength) else { Issue.record("no connection"); return }
        defer { close(Int32(fd)) }
        #expect(fcntl(Int32(fd), F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(Int32(fd), F_GETFD) & FD_CLOEXEC != 0)
        #expect(Int(peerLength) == MemoryLayout<sockaddr_in>.size)
        let p = SocketAddress(storage: UnsafeRawPointer(peer), length: Int(peerLength))
        #expect(p == Socket.localAddress(c))
    }

    @Test func listenTCPAddressInUse() throws {
        let l = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let addr = try #require(Socket.localAddress(l.raw))
        #expect(throws: IOError("bind \(addr)", errno: EADDRINUSE)) { _ = try Socket.listenTCP(addr) }
    }

    @Test func listenTCPDualStackAcceptsIPv4() throws {
        let dual = try Socket.listenTCP(SocketAddress(ip: "::", port: 0)!, dualStack: true)
        #expect(try Socket.getOption(dual.raw, Int32(IPPROTO_IPV6), IPV6_V6ONLY) == 0)
        let port = boundPort(dual.raw)
        let c = blockingConnect(port: port, host: "127.0.0.1")
        defer { close(c) }
        #expect(waitUntil { pollReadable(dual.raw) })
        let peer = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
        defer { peer.deallocate() }
        var peerLength = socklen_t(0)
        guard case .done(let fd) = try Socket.accept(dual.raw, peer: peer, peerLength: &peerLength) else { Issue.record("no connection"); return }
        close(Int32(fd))
        let p = try #require(SocketAddress(storage: UnsafeRawPointer(peer), length: Int(peerLength)))
        #expect(p.family == AF_INET6)
        #expect(p.ipString == "127.0.0.1")  // IPv4-mapped, printed as IPv4

        let v6only = try Socket.listenTCP(SocketAddress(ip: "::", port: 0)!)
        #expect(try Socket.getOption(v6only.raw, Int32(IPPROTO_IPV6), IPV6_V6ONLY) == 1)
        // IPv4 and IPv6-only wildcards can share a port (as Go binds them).
        let v6port = boundPort(v6only.raw)
        let v4 = try Socket.listenTCP(SocketAddress(ip: "0.0.0.0", port: v6port)!)
        #expect(boundPort(v4.raw) == v6port)
    }

    @Test func listenUnixReplacesStaleSocketAndSetsMode() throws {
        let path = tempPath("unix") + ".sock"
        defer { unlink(path) }
        do {
            // A stale socket file left by a dead process.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let rc = SocketAddress.unix(path: path).withSockAddr { sa, len in bind(fd, sa, len) }
            #expect(rc == 0)
            close(fd)
        }
        var st = stat()
        #expect(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK)
        let l = try Socket.listenUnix(path: path, mode: 0o600)
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(Socket.localAddress(l.raw) == .unix(path: path))
        var inProgress = true
        let c = try Socket.connect(.unix(path: path), inProgress: &inProgress)
        #expect(!inProgress)
        #expect(c.raw >= 0)
        #expect(waitUntil { pollReadable(l.raw) })
    }

    @Test func listenUnixRefusesToReplaceARegularFile() throws {
        let path = tempPath("regular")
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        #expect(throws: IOError("bind unix/\(path)", errno: EADDRINUSE)) { _ = try Socket.listenUnix(path: path) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    @Test func listenUnixAbstract() throws {
        let name = "@berth-el-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let l = try Socket.listenUnix(path: name, mode: 0o600)  // mode ignored for abstract names
        #expect(Socket.localAddress(l.raw) == .unix(path: name))
        #expect(throws: IOError("bind unix/\(name)", errno: EADDRINUSE)) { _ = try Socket.listenUnix(path: name) }
    }

    @Test func connectInProgressThenEstablished() throws {
        let l = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let addr = try #require(Socket.localAddress(l.raw))
        var inProgress = false
        let c = try Socket.connect(addr, inProgress: &inProgress)
        if inProgress {
            var p = pollfd(fd: c.raw, events: Int16(POLLOUT), revents: 0)
            #expect(poll(&p, 1, 5000) == 1)
        }
        #expect(try Socket.getOption(c.raw, SOL_SOCKET, SO_ERROR) == 0)
        #expect(fcntl(c.raw, F_GETFL) & O_NONBLOCK != 0)
    }

    @Test func connectRefused() throws {
        // Find a free port, then close it.
        let port: Int
        do {
            let l = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
            port = boundPort(l.raw)
        }
        let addr = SocketAddress(ip: "127.0.0.1", port: port)!
        var inProgress = false
        do {
            let c = try Socket.connect(addr, inProgress: &inProgress)
            // Asynchronous failure: reported through SO_ERROR once writable.
            #expect(inProgress)
            var p = pollfd(fd: c.raw, events: Int16(POLLOUT), revents: 0)
            #expect(poll(&p, 1, 5000) == 1)
            #expect(try Socket.getOption(c.raw, SOL_SOCKET, SO_ERROR) == ECONNREFUSED)
        } catch {
            #expect(error == IOError("connect \(addr)", errno: ECONNREFUSED))
        }
        let missing = tempPath("nosuch")
        #expect(throws: IOError("connect unix/\(missing)", errno: ENOENT)) { _ = try Socket.connect(.unix(path: missing), inProgress: &inProgress) }
    }

    @Test func sendfileAdvancesOffset() throws {
        let path = tempPath("sendfile")
        defer { unlink(path) }
        try FileIO.writeAtomically(path, Array("0123456789".utf8))
        let file = open(path, O_RDONLY)
        defer { close(file) }
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        var off: Int64 = 3
        #expect(try Socket.sendfile(b, file: file, offset: &off, count: 4) == .done(4))
        #expect(off == 7)
        let buf = ByteBuffer(capacity: 64)
        #expect(try Socket.read(a, into: buf) == .done(4))
        #expect(String(decoding: buf.readable, as: UTF8.self) == "3456")
    }
}

/// True when `fd` polls readable right now.
func pollReadable(_ fd: Int32) -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&p, 1, 0) == 1 && p.revents & Int16(POLLIN) != 0
}
