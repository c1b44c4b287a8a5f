/// A frame header (RFC 9113 §4.1): 24-bit length, type, flags, 31-bit stream identifier.
package struct HTTP2FrameHeader: Sendable, Equatable {
    package var length: Int
    package var type: UInt8
    package var flags: UInt8
    package var streamID: UInt32

    package init(length: Int, type: UInt8, flags: UInt8, streamID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.streamID = streamID
    }

    /// Frame types (RFC 9113 §6).
    package static let data: UInt8 = 0x0
    package static let headers: UInt8 = 0x1
    package static let priority: UInt8 = 0x2
    package static let rstStream: UInt8 = 0x3
    package static let settings: UInt8 = 0x4
    package static let pushPromise: UInt8 = 0x5
    package static let ping: UInt8 = 0x6
    package static let goAway: UInt8 = 0x7
    package static let windowUpdate: UInt8 = 0x8
    package static let continuation: UInt8 = 0x9

    /// Flags (RFC 9113 §6).
    package static let endStream: UInt8 = 0x1
    package static let ack: UInt8 = 0x1
    package static let endHeaders: UInt8 = 0x4
    package static let padded: UInt8 = 0x8

    @inline(__always) package func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
}

/// Walks the client's byte stream frame by frame without decoding payloads, so the flood guard
/// sees every frame header before nghttp2 processes the frame — also frames nghttp2 would
/// ignore without telling us (DATA on closed streams, header blocks of refused streams).
///
/// State machine (one per connection; bytes may be split anywhere between calls):
///
///     preface(matched) ──24 bytes of "PRI * HTTP/2.0…"──► header(have) ◄──────────┐
///            │ mismatch                                   │ 9 bytes               │ remaining == 0
///            ▼                                            ▼                       │
///        badPreface                                  payload(remaining) ─────────┘
///
/// A padded DATA frame reports its Pad Length byte separately (`.padLength`) so the guard can
/// tell a frame that carries only padding (RFC 9113 §6.1).
package struct HTTP2FrameScanner: Sendable {
    /// Where in the byte stream the scanner is.
    package enum State: Sendable, Equatable {
        /// Matching the 24-byte client connection preface (RFC 9113 §3.4).
        case preface(matched: Int)
        /// Collecting a 9-byte frame header.
        case header(have: Int)
        /// Skipping a payload.
        case payload(remaining: Int)
        /// The peer sent something other than the preface; nothing more is scanned.
        case badPreface
    }

    /// What `next` found.
    package enum Event: Sendable, Equatable {
        /// A complete frame header; `headerStart` is the offset of its first byte in this call's
        /// buffer, or 0 when it began in an earlier call.
        case frame(HTTP2FrameHeader, headerStart: Int)
        /// The Pad Length byte of the last padded DATA frame.
        case padLength(UInt8)
        /// The input is not HTTP/2.
        case badPreface
        /// Every byte was consumed.
        case needMore
    }

    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4).
    static let preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    package private(set) var state: State = .preface(matched: 0)
    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// Set after a padded DATA header; the next payload byte is its Pad Length.
    private var wantPadLength = false

    package init() {}

    /// Advances over `bytes` from `offset` to the next event. Returns `.needMore` with
    /// `offset == bytes.count` when the buffer is exhausted.
    package mutating func next(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> Event {
        let n = bytes.count
        while offset < n {
            switch state {
            case .preface(let matched):
                let want = HTTP2FrameScanner.preface
                let take = min(24 - matched, n - offset)
                for k in 0..<take where bytes[offset + k] != want.utf8Start[matched + k] {
                    state = .badPreface
                    offset = n
                    return .badPreface
                }
                offset += take
                state = matched + take == 24 ? .header(have: 0) : .preface(matched: matched + take)
            case .header(let have):
                let start = offset - have
                var h = have
                withUnsafeMutableBytes(of: &header) { hb in
                    while h < 9 && offset < n {
                        hb[h] = bytes[offset]
                        h += 1
                        offset += 1
                    }
                }
                if h < 9 {
                    state = .header(have: h)
                    return .needMore
                }
                let fh = withUnsafeBytes(of: &header) { hb in
                    HTTP2FrameHeader(
                        length: Int(hb[0]) << 16 | Int(hb[1]) << 8 | Int(hb[2]), type: hb[3], flags: hb[4],
                        streamID: (UInt32(hb[5]) << 24 | UInt32(hb[6]) << 16 | UInt32(hb[7]) << 8 | UInt32(hb[8]))
                            & 0x7FFF_FFFF)
                }
                state = fh.length == 0 ? .header(have: 0) : .payload(remaining: fh.length)
                wantPadLength = fh.type == HTTP2FrameHeader.data && fh.has(HTTP2FrameHeader.padded) && fh.length > 0
                return .frame(fh, headerStart: max(0, start))
            case .payload(let remaining):
                if wantPadLength {
                    wantPadLength = false
                    let pad = bytes[offset]
                    offset += 1
                    state = remaining == 1 ? .header(have: 0) : .payload(remaining: remaining - 1)
                    return .padLength(pad)
                }
                let take = min(remaining, n - offset)
                offset += take
                state = take == remaining ? .header(have: 0) : .payload(remaining: remaining - take)
            case .badPreface:
                offset = n
                return .badPreface
            }
        }
        return .needMore
    }

    /// True once the whole preface has been seen.
    package var sawPreface: Bool {
        switch state {
        case .preface, .badPreface: return false
        default: return true
        }
    }
}
