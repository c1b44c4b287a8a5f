/// Size limits for HTTP/1.x requests. Every limit is checked before the bytes it guards are
/// copied anywhere, so a peer can make a connection hold at most about `maxHeadBytes` of head.
package struct HTTP1Limits: Sendable, Equatable {
    /// Largest request head in bytes: request line, field lines, every line ending and the
    /// final empty line. Caddy's default is 16 KiB + Go's 4096 bytes of slack, so 20480 is
    /// accepted and 20481 gets `431` (RFC 6585 §5).
    package var maxHeadBytes: Int = 20480
    /// Most field lines in a head (Host included); more gets `431`. Go has no count limit.
    package var maxFieldCount: Int = 100
    /// Longest request target; longer gets `414` (RFC 9112 §3: a server that receives a
    /// target longer than it wishes to parse MUST respond with 414).
    package var maxTargetLength: Int = 16384
    /// Longest method; longer gets `405` like Caddy (which rejects methods over 32 bytes).
    package var maxMethodLength: Int = 32
    /// Longest chunk-size line (size, extensions, CRLF) of a chunked body (RFC 9112 §7.1.1
    /// lets a server limit extensions).
    package var maxChunkLineBytes: Int = 4096
    /// Largest trailer section of a chunked body (RFC 9112 §7.1.2).
    package var maxTrailerBytes: Int = 16384
    /// Most trailer field lines.
    package var maxTrailerFields: Int = 100
    /// Unread request body the connection discards after a response to stay alive; a larger
    /// remainder closes the connection (Go's `maxPostHandlerReadBytes`, 256 KiB).
    package var maxDiscardBytes: Int64 = 256 * 1024
    /// Bytes of input the connection buffers while a handler is busy before it asks the driver
    /// to stop reading (pipelined requests, a paused body).
    package var maxBufferedInput: Int = 64 * 1024
    /// Bytes of unsent output above which the connection stops parsing pipelined requests
    /// until the driver has flushed (so a client that never reads cannot grow the output).
    package var maxPendingOutput: Int = 256 * 1024

    package init() {}
}

/// Timeouts the driver arms on behalf of a connection (see `HTTP1Connection.timeout`).
package struct HTTP1Timeouts: Sendable, Equatable {
    /// From the first byte of a request head (or from accept, for the first request) until the
    /// head is complete: the slowloris guard.
    package var readHeader: Duration = .seconds(10)
    /// Between requests on a kept-alive connection (Caddy: 5 minutes).
    package var idle: Duration = .seconds(300)
    /// Longest pause between two pieces of a request body the connection is waiting for.
    package var readBody: Duration = .seconds(60)

    package init() {}
}

/// Everything an `HTTP1Connection` needs to know besides its peer.
package struct HTTP1Configuration: Sendable {
    package var limits = HTTP1Limits()
    package var timeouts = HTTP1Timeouts()
    /// Value of the `Server` header added to handler responses unless the handler set one;
    /// nil sends none. Go-level rejections and `OPTIONS *` never carry it, like Caddy.
    package var serverName: String? = "Berth"

    package init() {}
}

/// Which timer the driver should have armed, as reported by `HTTP1Connection.timeout`.
///
/// Two values compare equal only when they describe the same timing period: `epoch` changes
/// whenever a new period starts (a new request head, new body progress), so a driver re-arms
/// exactly when `timeout != armed`.
package struct HTTP1Timeout: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// A request head is (or may start) arriving; see `HTTP1Timeouts.readHeader`.
        case readHeader
        /// Kept-alive connection between requests; see `HTTP1Timeouts.idle`.
        case idle
        /// Waiting for request body bytes; see `HTTP1Timeouts.readBody`.
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
