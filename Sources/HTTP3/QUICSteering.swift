#if canImport(Glibc)
import Glibc
#endif

/// Several endpoints serving one UDP socket, one per event loop (the socket may be a single
/// inherited `fdgram/N`, so the kernel cannot spread connections for us). Every connection
/// ID an endpoint issues carries its index in the first byte (`byte % count == index`), so
/// any loop that reads a datagram knows which loop owns its connection from the destination
/// connection ID alone — no shared routing table. A client's own Initial DCID is random, so
/// the same rule spreads new connections evenly and sends its retransmitted Initials to the
/// same loop. (The first byte of a CID is otherwise random: it tells an observer only
/// which loop serves the connection.)
///
/// What must be common to all endpoints of the socket lives here too: the 0-RTT anti-replay
/// table (a replayed ClientHello re-encrypted under another Initial DCID would land on
/// another loop). Tokens and stateless-reset tokens already agree: every endpoint derives
/// them from the same static secret.
package final class QUICSteering: @unchecked Sendable {
    /// Number of endpoints (loops) sharing the socket; 1 ≤ count ≤ 255.
    package let count: Int
    /// Shared by every endpoint of the socket (nil when early data is off).
    let antiReplay: QUICAntiReplay?

    package init(count: Int, earlyData: Bool) {
        self.count = max(1, min(count, 255))
        antiReplay = earlyData ? QUICAntiReplay() : nil
    }

    /// The endpoint that owns the connection `packet` belongs to (RFC 8999's invariant header:
    /// a long header has the DCID length at byte 5 and the DCID at byte 6; a short header
    /// has Berth's DCID at byte 1). Packets without a DCID byte go to `fallback`.
    @inline(__always)
    package func owner(of packet: UnsafeRawBufferPointer, fallback: Int) -> Int {
        if count == 1 { return 0 }
        guard let p = packet.baseAddress?.assumingMemoryBound(to: UInt8.self), packet.count > 1 else { return fallback }
        let b: UInt8
        if p[0] & 0x80 != 0 {
            guard packet.count > 6, p[5] > 0 else { return fallback }
            b = p[6]
        } else {
            b = p[1]
        }
        return Int(b) % count
    }

    /// `b` moved to the residue class of `index`, keeping it uniform over that class.
    @inline(__always)
    func steer(_ b: UInt8, index: Int) -> UInt8 {
        if count == 1 { return b }
        let classes = 256 / count
        return UInt8((Int(b) % classes) * count + index)
    }
}
