import Glibc
import HTTPCore
import IOCore
import Testing
@testable import HTTP3

/// Connection-ID steering between the endpoints (loops) sharing one UDP socket.
@Suite struct QUICSteeringTests {
    func owner(_ s: QUICSteering, _ p: [UInt8], fallback: Int = 99) -> Int {
        p.withUnsafeBytes { s.owner(of: $0, fallback: fallback) }
    }

    @Test func ownerComesFromTheFirstByteOfTheDestinationCID() {
        let s = QUICSteering(count: 3, earlyData: false)
        // Long header: flags, version, DCID length, DCID…
        #expect(owner(s, [0xC0, 0, 0, 0, 1, 4, 7, 1, 2, 3]) == 7 % 3)
        #expect(owner(s, [0xC0, 0, 0, 0, 1, 4, 200, 1, 2, 3]) == 200 % 3)
        // Short header: flags, then the DCID.
        #expect(owner(s, [0x40, 5, 9, 9]) == 5 % 3)
        // Nothing to steer by: the reading loop keeps it.
        #expect(owner(s, [0xC0, 0, 0, 0, 1, 0, 0]) == 99)
        #expect(owner(s, [0xC0, 0, 0]) == 99)
        #expect(owner(s, [0x40]) == 99)
        #expect(owner(s, []) == 99)
        // Alone on the socket: always 0.
        #expect(owner(QUICSteering(count: 1, earlyData: false), [0x40, 5, 9]) == 0)
    }

    @Test func steeredBytesStayUniformAndInTheirClass() {
        for count in [2, 3, 5, 7, 255] {
            let s = QUICSteering(count: count, earlyData: false)
            for index in [0, count - 1] {
                var seen = Set<UInt8>()
                for b in 0...255 {
                    let v = s.steer(UInt8(b), index: index)
                    #expect(Int(v) % count == index)
                    seen.insert(v)
                }
                #expect(seen.count == 256 / count)  // every value of the class is reachable
            }
        }
    }

    /// Every CID an endpoint issues routes back to it: the Retry's new server CID (the
    /// client's next Initial is addressed to it) and connection IDs from `newConnectionID`.
    @Test func issuedCIDsRouteToTheirEndpoint() {
        let steering = QUICSteering(count: 3, earlyData: false)
        for index in 0..<3 {
            var cfg = HTTP3Configuration()
            cfg.staticSecret = Array(repeating: 7, count: 32)
            cfg.limits.requireRetry = true
            let e = QUICEndpoint(configuration: cfg, dateCache: DateCache(), steering: steering, index: index)
            let r = QUICEndpointTests.Recorder()
            e.delegate = r
            for _ in 0..<20 {
                let cid = e.newConnectionID()
                let first = withUnsafeBytes(of: cid.data) { $0[0] }
                #expect(owner(steering, [0x40, first, 1, 2]) == index)
            }
            let t = QUICEndpointTests()
            for _ in 0..<20 {
                t.feed(e, t.initial(dcid: t.random(8), scid: t.random(8)))
            }
            #expect(r.sent.count == 20)
            for p in r.sent {
                #expect(p[0] & 0xF0 == 0xF0)  // Retry
                let scidAt = 6 + Int(p[5]) + 1
                #expect(p[scidAt - 1] == 18)
                // The client's next Initial has the Retry's SCID as its DCID.
                let next = [0xC0, 0, 0, 0, 1, 18] + Array(p[scidAt..<(scidAt + 18)])
                #expect(owner(steering, next) == index)
            }
        }
    }

    /// Endpoints of one socket share the 0-RTT anti-replay table.
    @Test func endpointsOfOneSocketShareTheAntiReplayTable() throws {
        let steering = QUICSteering(count: 2, earlyData: true)
        var cfg = HTTP3Configuration()
        cfg.settings.earlyData = true
        let a = QUICEndpoint(configuration: cfg, dateCache: DateCache(), steering: steering, index: 0)
        let b = QUICEndpoint(configuration: cfg, dateCache: DateCache(), steering: steering, index: 1)
        let ta = try #require(a.antiReplay), tb = try #require(b.antiReplay)
        #expect(ta === tb)
        let now = time(nil)
        #expect(ta.add([1, 2, 3], expires: now + 10, now: now) == 0)
        #expect(tb.add([1, 2, 3], expires: now + 10, now: now) != 0)  // a replay on the other loop
    }
}
