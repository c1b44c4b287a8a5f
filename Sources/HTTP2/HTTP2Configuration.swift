/// The SETTINGS Berth advertises in its connection preface (RFC 9113 §3.4, §6.5.2) and the
/// receive windows it keeps (RFC 9113 §5.2, §6.9).
package struct HTTP2Settings: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2). Go's and Caddy's default is 250.
    /// It also caps handlers in flight: a stream the client reset still holds its slot until
    /// its handler finishes (the CVE-2023-44487 fix Go shipped).
    package var maxConcurrentStreams: Int = 250
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window, so the most request body
    /// one stream can have buffered before a handler reads it (RFC 9113 §6.9.2).
    package var initialWindowSize: Int = 256 * 1024
    /// The connection-level receive window, raised from 65535 with a WINDOW_UPDATE on
    /// stream 0 right after SETTINGS (RFC 9113 §6.9.2: only WINDOW_UPDATE changes it). Bytes
    /// count against it until the handler consumes them, so it bounds unread request body per
    /// connection.
    package var connectionWindowSize: Int = 1 << 20
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept (16384…16777215).
    package var maxFrameSize: Int = 16384
    /// SETTINGS_MAX_HEADER_LIST_SIZE: decoded request head size (name + value + 32 per field,
    /// RFC 9113 §6.5.2). Larger heads get `431` (RFC 9113 §10.5.1). Same budget as HTTP/1's
    /// `maxHeadBytes` (Caddy's 16 KiB + Go's 4 KiB slack).
    package var maxHeaderListSize: Int = 20480
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table our decoder keeps (RFC 7541 §4.2).
    package var headerTableSize: Int = 4096

    package init() {}
}

/// Abuse limits. Each one ends the connection with GOAWAY and `.flushAndClose` the moment it
/// is crossed, before the offending frame reaches nghttp2 where possible (see
/// `HTTP2FloodGuard`). Rates are counted in fixed one-second windows.
package struct HTTP2Limits: Sendable, Equatable {
    /// Most RST_STREAM frames a client may send in one second, plus streams we had to reset
    /// because of the client (refused, protocol errors: the "MadeYouReset" variant).
    /// More is CVE-2023-44487 "rapid reset": GOAWAY ENHANCE_YOUR_CALM.
    package var maxResetsPerSecond: Int = 100
    /// Window over which resets are compared with streams opened.
    package var resetRatioWindow: Duration = .seconds(10)
    /// Resets within `resetRatioWindow` above which the ratio rule applies.
    package var minResetsForRatio: Int = 100
    /// Resets as a percentage of streams opened within the window above which the client is
    /// treated as a rapid-reset attacker even under `maxResetsPerSecond`.
    package var maxResetPercent: Int = 80
    /// Encoded bytes of one header block (HEADERS + CONTINUATION payloads). More is a
    /// CONTINUATION flood (CVE-2024-28182 in nghttp2, VU#421644): GOAWAY ENHANCE_YOUR_CALM. Checked on frame
    /// headers, so the oversize payload is never decoded.
    package var maxHeaderBlockBytes: Int = 65536
    /// CONTINUATION frames after one HEADERS frame (nghttp2's later fix uses 8; Debian's
    /// backport too, so we stay below it to answer with our own code).
    package var maxContinuationFrames: Int = 5
    /// Decoded bytes of one header block (RFC 9113 §6.5.2 accounting) at which decoding is
    /// cut off with GOAWAY ENHANCE_YOUR_CALM: an HPACK bomb (RFC 7541 §7.3) that expands a
    /// small block by indexing a large table entry again and again. Between
    /// `maxHeaderListSize` and this the stream only gets `431`.
    package var maxDecodedHeaderBytes: Int = 65536
    /// Header fields per request; more gets `431` (HTTP/1 uses the same 100).
    package var maxHeaderFields: Int = 100
    /// PING frames (not ACKs) per second (RFC 9113 §10.5: PING floods).
    package var maxPingsPerSecond: Int = 100
    /// SETTINGS frames (not ACKs) per second (RFC 9113 §10.5: SETTINGS floods).
    package var maxSettingsPerSecond: Int = 20
    /// SETTINGS/PING ACKs nghttp2 may hold unsent (`nghttp2_option_set_max_outbound_ack`,
    /// nghttp2's default is 1000); more means the client sends faster than it reads
    /// (CVE-2019-9512/9515). Above `maxPingsPerSecond + maxSettingsPerSecond`, so a burst in
    /// one read trips the rate limits first.
    package var maxOutboundAcks: Int = 200
    /// DATA frames with no payload and no END_STREAM per second (CVE-2019-9518).
    package var maxEmptyDataFramesPerSecond: Int = 100
    /// Bytes of unsent output above which frames stay in nghttp2's queues and the driver is
    /// told to stop reading (`.wait`), so a client that never reads cannot grow `output`.
    package var maxPendingOutput: Int = 256 * 1024
    /// A streamed response is writable (`ResponseFlowControl.isResponseWritable`) while its buffered, unsent
    /// body is under the peer's flow-control window for it, but never under this many bytes.
    package var minStreamWriteBuffer: Int = 16 * 1024
    /// … and never over this many bytes, however large the peer's window.
    package var maxStreamWriteBuffer: Int = 1 << 20
    /// Idle stream objects kept for reuse per connection; beyond this a finished stream's
    /// storage is freed (steady state below it allocates nothing per request).
    package var streamPoolSize: Int = 32

    package init() {}
}

/// Timeouts the driver arms on behalf of a connection (see `HTTP2Connection.timeout`). Writes
/// that stall (the peer stops reading) are the driver's write timeout, as for HTTP/1.
package struct HTTP2Timeouts: Sendable, Equatable {
    /// From the start until the client preface and SETTINGS arrived (HTTP/1's read-header
    /// timeout plays this role for h2c too).
    package var preface: Duration = .seconds(10)
    /// No open stream: close with GOAWAY NO_ERROR (Caddy: 5 minutes).
    package var idle: Duration = .seconds(300)
    /// Longest pause in a request body a handler is waiting for (any stream's DATA restarts
    /// it); then the waiting readers fail with `.timedOut` and their streams are reset with
    /// CANCEL. HTTP/1's read-body timeout, per connection.
    package var readBody: Duration = .seconds(60)

    package init() {}
}

/// Everything an `HTTP2Connection` needs to know besides its peer.
package struct HTTP2Configuration: Sendable {
    package var settings = HTTP2Settings()
    package var limits = HTTP2Limits()
    package var timeouts = HTTP2Timeouts()
    /// Value of the `server` field added to handler responses unless the handler set one
    /// (like HTTP/1); nil sends none.
    package var serverName: String? = "Berth"

    package init() {}
}

/// Which timer the driver should have armed, as reported by `HTTP2Connection.timeout`.
///
/// Same contract as `HTTP1Timeout`: two values are equal only for the same period, so a
/// driver re-arms exactly when `timeout != armed`.
package struct HTTP2Timeout: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// Waiting for the client preface; see `HTTP2Timeouts.preface`.
        case preface
        /// No stream open; see `HTTP2Timeouts.idle`.
        case idle
        /// A handler waits for request body; see `HTTP2Timeouts.readBody`.
        case readBody
    }

    package var kind: Kind
    /// How long from now.
    package var duration: Duration
    /// Distinguishes successive periods of the same kind.
    package var epoch: UInt64

    /// `duration` in whole milliseconds (for `Deadline.after(milliseconds:)`).
    package var milliseconds: Int {
        let c = duration.components
        return Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000)
    }
}

extension Duration {
    /// Whole nanoseconds (for comparing with `Clock.monotonicNanos()`).
    var nanoseconds: UInt64 {
        let c = components
        return UInt64(max(0, c.seconds)) &* 1_000_000_000 &+ UInt64(max(0, c.attoseconds / 1_000_000_000))
    }
}
