internal import CNGHTTP2

/// Owns one `nghttp2_session` (server side); freed in `deinit`. The session's user data is an
/// unretained pointer to the `HTTP2Connection` that owns this object, so it can never outlive
/// the connection it calls back into.
final class NGHTTP2Session {
    let raw: OpaquePointer
    /// Where nghttp2 allocates; freed after the session (stored properties are released
    /// after `deinit` ran).
    let allocator: NGHTTP2Allocator

    init(owned raw: OpaquePointer, allocator: NGHTTP2Allocator) {
        self.raw = raw
        self.allocator = allocator
    }

    deinit { nghttp2_session_del(raw) }

    /// A server session with Berth's callbacks, options for `limits` and its own allocator.
    static func server(limits: HTTP2Limits) -> NGHTTP2Session {
        let option = NGHTTP2Option(limits: limits)
        let allocator = NGHTTP2Allocator()
        var mem = allocator.mem
        var p: OpaquePointer? = nil
        let rv = nghttp2_session_server_new3(&p, NGHTTP2Callbacks.server.raw, nil, option.raw, &mem)
        guard rv == 0, let p else { fatalError("nghttp2_session_server_new3: \(rv)") }
        return NGHTTP2Session(owned: p, allocator: allocator)
    }

    /// Points the callbacks at their connection (after it is fully initialised).
    func setUserData(_ p: UnsafeMutableRawPointer?) {
        nghttp2_session_set_user_data(raw, p)
    }
}

/// Owns one `nghttp2_option`; only needed while the session is created.
final class NGHTTP2Option {
    let raw: OpaquePointer

    init(limits: HTTP2Limits) {
        var p: OpaquePointer? = nil
        guard nghttp2_option_new(&p) == 0, let p else { fatalError("nghttp2_option_new") }
        raw = p
        // Window updates follow the handler's reads, not the arrival of DATA (RFC 9113 §5.2.2).
        nghttp2_option_set_no_auto_window_update(raw, 1)
        // SETTINGS/PING ACKs queued but unsent beyond this: NGHTTP2_ERR_FLOODED.
        nghttp2_option_set_max_outbound_ack(raw, max(1, limits.maxOutboundAcks))
        // We send SETTINGS_NO_RFC7540_PRIORITIES=1 (RFC 9218), so no priority tree to keep.
        nghttp2_option_set_no_closed_streams(raw, 1)
    }

    deinit { nghttp2_option_del(raw) }
}
