import Glibc
import HTTPCore
import IOCore
import Testing
@testable import HTTP3

/// The endpoint's stateless answers (RFC 9000 §6, §8.1.2, §10.3, §5.2.2), driven with
/// handcrafted datagrams: no socket, no TLS.
@Suite final class QUICEndpointTests {
    final class Recorder: QUICEndpointDelegate {
        var sent: [[UInt8]] = []
        var segments: [Int] = []
        var acceptCalls = 0
        func quicEndpoint(send bytes: UnsafeRawBufferPointer, segmentSize: Int, to remote: UnsafeRawPointer,
                          remoteLength: Int, from local: UnsafeRawPointer?, localLength: Int, ecn: UInt32) -> Bool {
            sent.append(Array(bytes))
            segments.append(segmentSize)
            return true
        }
        func quicEndpointNeedsService(_ endpoint: QUICEndpoint) {}
        func quicEndpointAccept(_ endpoint: QUICEndpoint) -> QUICAcceptance? {
            acceptCalls += 1
            return nil
        }
    }

    func makeEndpoint(secret: [UInt8] = Array(repeating: 7, count: 32), retry: Bool = false,
                      maxConnections: Int = 10_000) -> (QUICEndpoint, Recorder) {
        var cfg = HTTP3Configuration()
        cfg.staticSecret = secret
        cfg.limits.requireRetry = retry
        cfg.limits.maxConnections = maxConnections
        let e = QUICEndpoint(configuration: cfg, dateCache: DateCache())
        let r = Recorder()
        e.delegate = r
        return (e, r)
    }

    func feed(_ e: QUICEndpoint, _ packet: [UInt8]) {
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(40000).bigEndian)
        remote.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var local = remote
        local.sin_port = in_port_t(UInt16(443).bigEndian)
        packet.withUnsafeBytes { p in
            withUnsafeBytes(of: &remote) { r in
                withUnsafeBytes(of: &local) { l in
                    e.receive(p, remote: r.baseAddress!, remoteLength: r.count, local: l.baseAddress!,
                              localLength: l.count, ecn: 0, now: Clock.monotonicNanos())
                }
            }
        }
        e.flush()
    }

    /// A QUIC v1 Initial (RFC 9000 §17.2.2) padded to 1200 bytes; the payload is not
    /// encrypted, which is enough for everything that happens before decryption.
    func initial(dcid: [UInt8], scid: [UInt8], token: [UInt8] = []) -> [UInt8] {
        var p: [UInt8] = [0xC0, 0, 0, 0, 1, UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
        p += varint(token.count) + token
        let rest = 1200 - p.count - 2
        p += [0x40 | UInt8(rest >> 8), UInt8(rest & 0xFF)]
        p += [0] + [UInt8](repeating: 0x5a, count: rest - 1)
        return p
    }

    func varint(_ v: Int) -> [UInt8] {
        v < 64 ? [UInt8(v)] : [0x40 | UInt8(v >> 8), UInt8(v & 0xFF)]
    }

    func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255) } }

    @Test func versionNegotiationEchoesTheCIDsAndOffersV1() {
        let (e, r) = makeEndpoint()
        let dcid = random(8), scid = random(5)
        var p: [UInt8] = [0xC0, 0x0a, 0x0a, 0x0a, 0x0a, 8] + dcid + [5] + scid
        p += [UInt8](repeating: 0, count: 1200 - p.count)
        feed(e, p)
        #expect(r.sent.count == 1)
        let v = r.sent[0]
        #expect(v[0] & 0x80 == 0x80)
        #expect(Array(v[1..<5]) == [0, 0, 0, 0])
        #expect(v[5] == 5)
        #expect(Array(v[6..<11]) == scid)
        #expect(v[11] == 8)
        #expect(Array(v[12..<20]) == dcid)
        let versions = stride(from: 20, to: v.count, by: 4).map { Array(v[$0..<$0 + 4]) }
        #expect(versions.contains([0, 0, 0, 1]))
        #expect(e.versionNegotiationsSent == 1)
    }

    @Test func statelessResetIsShorterDeterministicAndKeyedByTheSecret() {
        let (e, r) = makeEndpoint()
        let dcid = random(18)
        let probe = [0x41] + dcid + random(81)
        feed(e, probe)
        feed(e, probe)
        #expect(r.sent.count == 2)
        for s in r.sent {
            #expect(s[0] & 0xC0 == 0x40)  // short header form, fixed bit
            #expect(s.count >= 21 && s.count < probe.count)
        }
        #expect(Array(r.sent[0].suffix(16)) == Array(r.sent[1].suffix(16)))
        // The same secret (a restart) gives the same token; another secret another token.
        let (e2, r2) = makeEndpoint()
        feed(e2, probe)
        #expect(Array(r2.sent[0].suffix(16)) == Array(r.sent[0].suffix(16)))
        let (e3, r3) = makeEndpoint(secret: Array(repeating: 9, count: 32))
        feed(e3, probe)
        #expect(Array(r3.sent[0].suffix(16)) != Array(r.sent[0].suffix(16)))
        #expect(e.statelessResetsSent == 2)
    }

    @Test func noStatelessResetForTinyPackets() {
        let (e, r) = makeEndpoint()
        feed(e, [0x41] + random(18) + random(2))
        #expect(r.sent.isEmpty)
    }

    @Test func retryWhenRequiredCarriesANewCIDAndAToken() {
        let (e, r) = makeEndpoint(retry: true)
        let dcid = random(8), scid = random(8)
        feed(e, initial(dcid: dcid, scid: scid))
        #expect(r.sent.count == 1)
        let p = r.sent[0]
        #expect(p[0] & 0xF0 == 0xF0)  // long header, Retry (RFC 9000 §17.2.5)
        #expect(Array(p[1..<5]) == [0, 0, 0, 1])
        #expect(p[5] == 8)
        #expect(Array(p[6..<14]) == scid)  // to the client's SCID
        #expect(p[14] == 18)  // from a fresh 18-byte server CID
        #expect(p.count > 15 + 18 + 16)  // token + integrity tag
        #expect(e.retriesSent == 1)
        #expect(e.connectionCount == 0)
        #expect(r.acceptCalls == 0)  // no state before the address is validated
    }

    /// Address validation switches itself on under load: once `retryAboveHandshakes`
    /// connections are in their handshake, new Initials get a Retry instead of state.
    @Test func retryUnderLoadWithoutTheSetting() {
        let (e, r) = makeEndpoint()
        e.handshaking = e.configuration.limits.retryAboveHandshakes - 1
        feed(e, initial(dcid: random(8), scid: random(8)))
        #expect(e.retriesSent == 0)
        #expect(r.acceptCalls == 1)  // below the threshold: a connection would be created
        e.handshaking = e.configuration.limits.retryAboveHandshakes
        feed(e, initial(dcid: random(8), scid: random(8)))
        #expect(e.retriesSent == 1)
        #expect(r.sent.last.map { $0[0] & 0xF0 } == 0xF0)
        #expect(r.acceptCalls == 1)
        e.handshaking = 0
    }

    /// Beyond the connection limit an Initial is refused (CONNECTION_CLOSE, no state).
    @Test func connectionLimitRefuses() {
        let (e, r) = makeEndpoint(maxConnections: 0)
        feed(e, initial(dcid: random(8), scid: random(8)))
        #expect(e.refusedConnections == 1)
        #expect(r.acceptCalls == 0)
        #expect(r.sent.count == 1 && r.sent[0][0] & 0xF0 == 0xC0)
    }

    @Test func badRetryTokenIsAnsweredWithAClose() {
        let (e, r) = makeEndpoint()
        feed(e, initial(dcid: random(8), scid: random(8), token: [0xb6] + random(60)))
        #expect(r.sent.count == 1)
        #expect(r.sent[0][0] & 0xF0 == 0xC0)  // an Initial (carrying CONNECTION_CLOSE)
        #expect(e.connectionCount == 0)
    }

    @Test func refusedWhenNothingServesAndWhenShuttingDown() {
        let (e, r) = makeEndpoint()
        feed(e, initial(dcid: random(8), scid: random(8)))
        #expect(r.acceptCalls == 1)
        #expect(e.refusedConnections == 1)
        #expect(r.sent.count == 1)
        e.beginGracefulShutdown()
        feed(e, initial(dcid: random(8), scid: random(8)))
        #expect(r.acceptCalls == 1)
        #expect(e.refusedConnections == 2)
    }

    @Test func garbageIsDropped() {
        let (e, r) = makeEndpoint()
        feed(e, [0xC0, 0, 0, 0, 1, 3])
        feed(e, [])
        feed(e, random(1) + [0, 0, 0, 1])
        #expect(r.sent.count <= 1)
        #expect(e.connectionCount == 0)
    }
}
