internal import CNGTCP2

/// A QUIC connection ID as a hashable value (RFC 9000 §5.1: at most 20 bytes), the key of the
/// endpoint's routing table. Stored inline, so lookups never allocate.
struct QUICConnectionID: Hashable {
    var a: UInt64 = 0
    var b: UInt64 = 0
    var c: UInt32 = 0
    var length: UInt8 = 0

    init(_ p: UnsafePointer<UInt8>, count: Int) {
        let n = min(count, 20)
        length = UInt8(n)
        withUnsafeMutableBytes(of: &a) { d in for i in 0..<min(n, 8) { d[i] = p[i] } }
        if n > 8 { withUnsafeMutableBytes(of: &b) { d in for i in 8..<min(n, 16) { d[i - 8] = p[i] } } }
        if n > 16 { withUnsafeMutableBytes(of: &c) { d in for i in 16..<n { d[i - 16] = p[i] } } }
    }

    init(_ cid: UnsafePointer<ngtcp2_cid>) {
        self = withUnsafeBytes(of: cid.pointee.data) { raw in
            QUICConnectionID(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: cid.pointee.datalen)
        }
    }
}

extension ngtcp2_cid {
    /// A CID of `length` random bytes (RFC 9000 §5.1: unpredictable, so they cannot be linked).
    static func random(length: Int) -> ngtcp2_cid {
        var cid = ngtcp2_cid()
        cid.datalen = length
        withUnsafeMutableBytes(of: &cid.data) { QUICRandom.fill($0.baseAddress!, count: length) }
        return cid
    }
}
