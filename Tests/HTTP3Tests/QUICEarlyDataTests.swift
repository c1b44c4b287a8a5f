#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HTTP3

/// The 0-RTT anti-replay table GnuTLS consults (RFC 8446 §8.2).
@Suite struct QUICEarlyDataTests {
    @Test func aBinderIsAcceptedOnceWithinItsWindow() throws {
        let t = try #require(QUICAntiReplay())
        let key: [UInt8] = [1, 2, 3, 4]
        #expect(t.add(key, expires: 110, now: 100) == 0)
        #expect(t.add(key, expires: 111, now: 101) == -428)  // GNUTLS_E_DB_ENTRY_EXISTS: a replay
        #expect(t.add([9, 9], expires: 111, now: 101) == 0)  // another ClientHello
        // After the window, GnuTLS's own ticket-age check rejects old flights; the table may
        // take the key again.
        #expect(t.add(key, expires: 130, now: 120) == 0)
    }

    @Test func transportFingerprintFollowsTheAdvertisedLimits() {
        var a = HTTP3Configuration()
        let base = QUICEndpoint.transportFingerprint(a)
        #expect(QUICEndpoint.transportFingerprint(a) == base)
        a.settings.maxConcurrentStreams = 50
        #expect(QUICEndpoint.transportFingerprint(a) != base)
        var b = HTTP3Configuration()
        b.settings.earlyData = false
        #expect(QUICEndpoint.transportFingerprint(b) != base)
    }
}
