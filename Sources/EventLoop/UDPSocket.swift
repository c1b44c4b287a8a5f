#if canImport(Glibc)
import Glibc
#endif
import CLinux
import IOCore

/// UDP for QUIC: binding, socket options, batched receive with the local address and ECN of
/// each datagram, and GSO sends from a chosen local address (`CLinux` does the cmsg work).
package enum UDPSocket {
    /// Socket buffer size asked for (the kernel caps it at `net.core.[rw]mem_max`).
    package static let bufferBytes: Int32 = 4 << 20

    /// Prepares a UDP socket (inherited or ours) for QUIC: non-blocking, close-on-exec,
    /// IP_PKTINFO / IPV6_RECVPKTINFO (replies leave from the address a packet arrived on),
    /// IP_RECVTOS / IPV6_RECVTCLASS (ECN, RFC 9000 §13.4; IP_RECVTOS also on a dual-stack IPv6
    /// socket, where IPv4 packets report ECN only that way), PMTU discovery by the kernel off
    /// (`IP_PMTUDISC_PROBE`: DF set, ngtcp2 does its own probing).
    package static func configure(_ fd: Int32) throws(IOError) {
        guard let a = Socket.localAddress(fd) else { throw IOError("getsockname", errno: errno) }
        let rc = berth_udp_configure(fd, a.family, bufferBytes)
        if rc < 0 { throw IOError("configuring UDP socket", errno: -rc) }
    }

    /// Binds a UDP socket (IPv6 `[::]` dual-stack when `dualStack`), configured for QUIC.
    package static func bind(_ address: SocketAddress, dualStack: Bool = false) throws(IOError) -> FileDescriptor {
        let fd = Glibc.socket(address.family, Int32(SOCK_DGRAM.rawValue) | berth_sock_nonblock_cloexec(), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        let owned = FileDescriptor(owning: fd)
        if address.family == AF_INET6 { try Socket.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, dualStack ? 0 : 1) }
        let rc = address.withSockAddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc != 0 { throw IOError("bind udp \(address)", errno: errno) }
        try configure(fd)
        return owned
    }

    /// The usable receive buffer of `fd` in bytes (nil when unknown).
    package static func receiveBufferBytes(_ fd: Int32) -> Int? {
        let v = berth_udp_buffer_bytes(fd, 1)
        return v < 0 ? nil : Int(v)
    }

    /// True when the kernel supports UDP GSO (`UDP_SEGMENT`) on `fd`.
    package static func supportsGSO(_ fd: Int32) -> Bool { berth_udp_gso_supported(fd) != 0 }

    /// True for an IPv6 socket that also receives IPv4 (IPV6_V6ONLY off).
    package static func isDualStack(_ fd: Int32) -> Bool {
        guard let a = Socket.localAddress(fd), a.family == AF_INET6 else { return false }
        return (try? Socket.getOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY)) == 0
    }
}

/// Receive buffers for `recvmmsg`: `count` datagrams of up to `size` bytes, allocated once.
package final class UDPReceiveBatch {
    package let count: Int
    package let size: Int
    let msgs: UnsafeMutablePointer<berth_udp_msg>
    private let storage: UnsafeMutableRawPointer

    package init(count: Int = 64, size: Int = 2048) {
        self.count = count
        self.size = size
        msgs = .allocate(capacity: count)
        storage = .allocate(byteCount: count * size, alignment: 16)
        for i in 0..<count {
            msgs[i] = berth_udp_msg()
            msgs[i].buf = (storage + i * size).assumingMemoryBound(to: UInt8.self)
            msgs[i].cap = size
        }
    }

    deinit {
        msgs.deallocate()
        storage.deallocate()
    }

    /// Datagrams copied in with `appendCopy` (a batch handed from one loop to another).
    package var filled = 0

    /// Copies datagram `i` of `source`'s last `receive` (payload, addresses, ECN) into the next
    /// free slot; false when the batch is full.
    @inline(__always)
    package func appendCopy(_ i: Int, from source: UDPReceiveBatch) -> Bool {
        guard filled < count else { return false }
        let d = msgs + filled
        let s = source.msgs + i
        let n = min(s.pointee.len, size)
        d.pointee.remote = s.pointee.remote
        d.pointee.remote_len = s.pointee.remote_len
        d.pointee.local = s.pointee.local
        d.pointee.local_len = s.pointee.local_len
        d.pointee.ecn = s.pointee.ecn
        d.pointee.len = n
        UnsafeMutableRawPointer(d.pointee.buf).copyMemory(from: s.pointee.buf, byteCount: n)
        filled += 1
        return true
    }

    /// The payload of datagram `i` of the last `receive`.
    @inline(__always)
    package func payload(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: msgs[i].buf, count: msgs[i].len)
    }

    /// Reads up to `count` waiting datagrams; returns how many (0: none waiting).
    package func receive(_ fd: Int32, localPort: Int) throws(IOError) -> Int {
        let n = berth_udp_recv(fd, msgs, UInt32(count), UInt16(truncatingIfNeeded: localPort))
        if n < 0 { throw IOError("recvmmsg", errno: -n) }
        return Int(n)
    }

    /// Calls `body` for datagram `i` of the last `receive`: payload, peer and local
    /// `sockaddr`s with their lengths, ECN bits.
    @inline(__always)
    package func withDatagram<R>(
        _ i: Int,
        _ body: (UnsafeRawBufferPointer, UnsafeRawPointer, Int, UnsafeRawPointer, Int, UInt32) -> R
    ) -> R {
        let m = msgs + i
        let payload = UnsafeRawBufferPointer(start: m.pointee.buf, count: m.pointee.len)
        return withUnsafePointer(to: &m.pointee.remote) { r in
            withUnsafePointer(to: &m.pointee.local) { l in
                body(payload, UnsafeRawPointer(r), Int(m.pointee.remote_len), UnsafeRawPointer(l),
                     Int(m.pointee.local_len), m.pointee.ecn)
            }
        }
    }
}

extension UDPSocket {
    /// Sends `bytes` as datagrams of `segmentSize` (UDP GSO when `gso` and there are several),
    /// falling back to one `sendmsg` per datagram when the kernel refuses GSO (EIO, EINVAL).
    /// Returns false when the socket buffer was full (the packets count as lost).
    package static func send(
        _ fd: Int32, _ bytes: UnsafeRawBufferPointer, segmentSize: Int, gso: inout Bool,
        to remote: UnsafeRawPointer, remoteLength: Int, from local: UnsafeRawPointer?, localLength: Int, ecn: UInt32
    ) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        let r = remote.assumingMemoryBound(to: sockaddr.self)
        let l = local?.assumingMemoryBound(to: sockaddr.self)
        if gso || segmentSize >= bytes.count {
            let seg = segmentSize >= bytes.count ? 0 : segmentSize
            let n = berth_udp_send(
                fd, base, bytes.count, seg, r, socklen_t(remoteLength), l, socklen_t(localLength), ecn)
            if n >= 0 { return true }
            if n == -Int(EAGAIN) || n == -Int(EWOULDBLOCK) || n == -Int(ENOBUFS) { return false }
            if seg == 0 || (n != -Int(EIO) && n != -Int(EINVAL)) { return true }
            gso = false
        }
        var off = 0
        while off < bytes.count {
            let len = min(segmentSize, bytes.count - off)
            let n = berth_udp_send(fd, base + off, len, 0, r, socklen_t(remoteLength), l, socklen_t(localLength), ecn)
            if n == -Int(EAGAIN) || n == -Int(EWOULDBLOCK) || n == -Int(ENOBUFS) { return false }
            off += len
        }
        return true
    }
}
