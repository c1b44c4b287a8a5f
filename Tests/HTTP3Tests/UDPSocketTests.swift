import CLinux
import EventLoop
import Glibc
import IOCore
import Testing

/// The UDP layer QUIC rides on: local address (PKTINFO) and ECN of received datagrams, sends
/// from a chosen local address with ECN, and GSO batches split into datagrams by the kernel.
@Suite final class UDPSocketTests {
    var fds: [Int32] = []

    deinit { for fd in fds { close(fd) } }

    func bind(_ ip: String, dualStack: Bool = false) throws -> (Int32, SocketAddress) {
        let fd = try UDPSocket.bind(SocketAddress(ip: ip, port: 0)!, dualStack: dualStack).release()
        fds.append(fd)
        return (fd, Socket.localAddress(fd)!)
    }

    func receiveAll(_ fd: Int32, port: Int, batch: UDPReceiveBatch, expect: Int) throws -> [(Int, SocketAddress?, UInt32)] {
        var out: [(Int, SocketAddress?, UInt32)] = []
        let end = Clock.monotonicNanos() + 2_000_000_000
        while out.count < expect && Clock.monotonicNanos() < end {
            let n = try batch.receive(fd, localPort: port)
            if n == 0 {
                usleep(1000)
                continue
            }
            for i in 0..<n {
                batch.withDatagram(i) { p, _, _, l, ll, ecn in
                    out.append((p.count, ll > 0 ? SocketAddress(storage: l, length: ll) : nil, ecn))
                }
            }
        }
        return out
    }

    @Test func ipv4LocalAddressECNAndGSO() throws {
        let (server, sa) = try bind("127.0.0.1")
        let (client, _) = try bind("127.0.0.1")
        let batch = UDPReceiveBatch()
        let payload = [UInt8](repeating: 0x42, count: 3000)
        var gso = UDPSocket.supportsGSO(client)
        let ok = payload.withUnsafeBytes { p in
            sa.withSockAddr { r, rl in
                UDPSocket.send(client, p, segmentSize: 1200, gso: &gso, to: r, remoteLength: Int(rl),
                               from: nil, localLength: 0, ecn: 2)
            }
        }
        #expect(ok)
        let got = try receiveAll(server, port: sa.port, batch: batch, expect: 3)
        #expect(got.map { $0.0 } == [1200, 1200, 600])
        #expect(got.first?.1?.ipString == "127.0.0.1")
        #expect(got.first?.1?.port == sa.port)
        #expect(got.first?.2 == 2)  // ECT(0) arrived through IP_TOS
    }

    @Test func dualStackSocketSeesIPv4PeersAndRepliesFromTheArrivalAddress() throws {
        let (server, sa) = try bind("::", dualStack: true)
        #expect(UDPSocket.isDualStack(server))
        let (client, ca) = try bind("127.0.0.1")
        let to = SocketAddress(ip: "127.0.0.1", port: sa.port)!
        var gso = false
        let one: [UInt8] = [1, 2, 3]
        _ = one.withUnsafeBytes { p in
            to.withSockAddr { r, rl in
                UDPSocket.send(client, p, segmentSize: 3, gso: &gso, to: r, remoteLength: Int(rl),
                               from: nil, localLength: 0, ecn: 1)
            }
        }
        let batch = UDPReceiveBatch()
        let got = try receiveAll(server, port: sa.port, batch: batch, expect: 1)
        #expect(got.count == 1)
        #expect(got[0].1?.ipString == "127.0.0.1")  // ::ffff:127.0.0.1, printed as IPv4
        #expect(got[0].2 == 1)  // ECN of an IPv4 packet on a dual-stack socket
        // Reply from the arrival address (IPV6_PKTINFO with the mapped address).
        var reply: [UInt8] = [9]
        let sent = batch.withDatagram(0) { _, remote, rl, local, ll, _ in
            reply.withUnsafeBytes { p in
                UDPSocket.send(server, p, segmentSize: 1, gso: &gso, to: remote, remoteLength: rl,
                               from: local, localLength: ll, ecn: 2)
            }
        }
        #expect(sent)
        let back = try receiveAll(client, port: ca.port, batch: UDPReceiveBatch(), expect: 1)
        #expect(back.count == 1)
        #expect(back.first?.2 == 2)  // IP_TOS, not IPV6_TCLASS, for a v4-mapped peer
        reply = []
    }
}
