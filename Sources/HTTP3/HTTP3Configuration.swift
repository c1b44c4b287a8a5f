/// QUIC transport parameters Berth advertises (RFC 9000 §18.2) and HTTP/3 settings
/// (RFC 9114 §7.2.4.1). Windows are the most request body a client may have in flight before
/// a handler reads it.
package struct HTTP3Settings: Sendable, Equatable {
    /// initial_max_streams_bidi: request streams a client may open at once (RFC 9000 §4.6).
    /// quic-go's (and so Caddy's) default is 100. It also caps handlers in flight.
    package var maxConcurrentStreams: Int = 100
    /// initial_max_stream_data_bidi_remote: each request stream's receive window.
    package var streamReceiveWindow: Int = 256 * 1024
    /// initial_max_data: the connection's receive window.
    package var connectionReceiveWindow: Int = 1 << 20
    /// Upper bound of ngtcp2's receive-window auto-tuning (`max_window`/`max_stream_window`).
    package var maxReceiveWindow: Int = 6 << 20
    /// SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2): larger request heads get `431`.
    /// Same budget as HTTP/1 and HTTP/2 (Caddy's 16 KiB + Go's 4 KiB slack).
    package var maxFieldSectionSize: Int = 20480
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY of our decoder (RFC 9204 §5).
    package var qpackTableCapacity: Int = 4096
    /// SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 §5).
    package var qpackBlockedStreams: Int = 100
    /// active_connection_id_limit (RFC 9000 §18.2): how many server CIDs the client keeps.
    package var activeConnectionIDLimit: Int = 7
    /// Accept 0-RTT from clients resuming with a ticket (QUICEarlyData.swift), as Caddy
    /// (quic-go) does; unsafe methods still wait for the handshake.
    package var earlyData: Bool = true

    package init() {}
}

/// Per-endpoint limits: what one UDP socket accepts before it pushes back.
package struct QUICLimits: Sendable, Equatable {
    /// Open QUIC connections per socket; an Initial beyond this gets CONNECTION_CLOSE with
    /// CONNECTION_REFUSED (RFC 9000 §5.2.2).
    package var maxConnections: Int = 10_000
    /// Always validate client addresses with a Retry before creating state (RFC 9000 §8.1.2).
    package var requireRetry: Bool = false
    /// Connections still in their handshake above which Retry is required anyway (an Initial
    /// flood from spoofed addresses costs us a Retry packet, not a TLS handshake).
    package var retryAboveHandshakes: Int = 200
    /// Header fields per request (as HTTP/1 and HTTP/2); more gets `431`.
    package var maxHeaderFields: Int = 100
    /// Idle stream objects kept per connection for reuse. The pool only grows to the peak
    /// number of concurrent requests a connection had, so it can match `maxConcurrentStreams`:
    /// a client that keeps that many requests in flight then allocates nothing per request.
    package var streamPoolSize: Int = 100
    /// A streamed response is writable while less than this much of its body is buffered
    /// (unsent or unacknowledged: QUIC keeps sent bytes until ACKed for retransmission).
    package var streamWriteHighWater: Int = 1 << 20

    package init() {}
}

/// QUIC and HTTP/3 timeouts.
package struct QUICTimeouts: Sendable, Equatable {
    /// max_idle_timeout (RFC 9000 §10.1); Berth uses the server's idle timeout, as Caddy does.
    package var idle: Duration = .seconds(300)
    /// The whole handshake (ngtcp2 `handshake_timeout`); Berth uses the read-header timeout.
    package var handshake: Duration = .seconds(10)
    /// Longest pause in a request body a handler waits for; then the stream is reset.
    package var readBody: Duration = .seconds(60)
    /// How long Retry tokens stay valid (RFC 9000 §8.1.3).
    package var retryTokenLifetime: Duration = .seconds(10)

    package init() {}
}

/// Everything a `QUICEndpoint` needs besides its socket.
package struct HTTP3Configuration: Sendable {
    package var settings = HTTP3Settings()
    package var limits = QUICLimits()
    package var timeouts = QUICTimeouts()
    /// Value of the `server` field added to handler responses unless the handler set one.
    package var serverName: String? = "Berth"
    /// 32 bytes from which Retry tokens and stateless-reset tokens are derived (RFC 9000
    /// §10.3.2, §8.1.4). It must persist across restarts (Berth keeps it in its data
    /// directory), or resets and tokens issued before a restart are useless.
    package var staticSecret: [UInt8] = []
    /// ngtcp2's debug log on stderr.
    package var debugLog: Bool = false

    package init() {}
}

extension Duration {
    /// Whole nanoseconds (clamped at zero).
    var nanos: UInt64 {
        let c = components
        return UInt64(max(0, c.seconds)) &* 1_000_000_000 &+ UInt64(max(0, c.attoseconds / 1_000_000_000))
    }
}
