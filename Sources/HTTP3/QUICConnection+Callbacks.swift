internal import CGnuTLS
internal import CNGHTTP3
internal import CNGTCP2
import HTTPCore
import IOCore

/// The ngtcp2 callback table (ngtcp2.h:3360-3617), built once; ngtcp2 copies it into each
/// connection. The crypto callbacks are libngtcp2_crypto_gnutls's; the rest recover their
/// `QUICConnection` from the user data (unretained) and fail when it is NULL.
enum QUICCallbacks {
    static let table: ngtcp2_callbacks = {
        var cb = ngtcp2_callbacks()
        cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb
        cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb
        cb.encrypt = ngtcp2_crypto_encrypt_cb
        cb.decrypt = ngtcp2_crypto_decrypt_cb
        cb.hp_mask = ngtcp2_crypto_hp_mask_cb
        cb.update_key = ngtcp2_crypto_update_key_cb
        cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb
        cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb
        cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb
        cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb
        cb.rand = { dest, len, _ in
            if let dest { QUICRandom.fill(dest, count: len) }
        }
        cb.get_new_connection_id = quicGetNewConnectionID
        cb.remove_connection_id = quicRemoveConnectionID
        cb.recv_tx_key = quicRecvTxKey
        cb.handshake_completed = quicHandshakeCompleted
        cb.recv_stream_data = quicRecvStreamData
        cb.acked_stream_data_offset = quicAckedStreamDataOffset
        cb.stream_close = quicStreamClose
        cb.stream_reset = quicStreamReset
        cb.stream_stop_sending = quicStreamStopSending
        cb.extend_max_remote_streams_bidi = quicExtendMaxRemoteStreamsBidi
        cb.extend_max_stream_data = quicExtendMaxStreamData
        return cb
    }()
}

private let failure = NGTCP2_ERR_CALLBACK_FAILURE

@inline(__always)
private func connection(_ ud: UnsafeMutableRawPointer?) -> QUICConnection? {
    guard let ud else { return nil }
    return Unmanaged<QUICConnection>.fromOpaque(ud).takeUnretainedValue()
}

/// RFC 9000 §5.1.1: a new server CID, with its stateless-reset token from the static secret.
private let quicGetNewConnectionID: ngtcp2_get_new_connection_id = { _, cid, token, cidlen, ud in
    guard let c = connection(ud), let cid, let token else { return failure }
    cid.pointee = c.endpoint.newConnectionID(length: cidlen)
    guard c.endpoint.resetToken(for: cid, into: token) else { return failure }
    c.route(QUICConnectionID(cid))
    return 0
}

private let quicRemoveConnectionID: ngtcp2_remove_connection_id = { _, cid, ud in
    guard let c = connection(ud), let cid else { return failure }
    let key = QUICConnectionID(cid)
    if let i = c.routedCIDs.firstIndex(of: key) { c.routedCIDs.remove(at: i) }
    if c.endpoint.routes[key] === c { c.endpoint.removeRoute(key) }
    return 0
}

/// 1-RTT send keys exist: HTTP/3 starts here, before the handshake completes, so the
/// server's control stream and SETTINGS go out as 0.5-RTT data (RFC 9114 §6.2.1).
private let quicRecvTxKey: ngtcp2_recv_key = { _, level, ud in
    guard let c = connection(ud) else { return failure }
    if level != NGTCP2_CRYPTO_LEVEL_APPLICATION { return 0 }
    return c.setupHTTP3() ? 0 : failure
}

private let quicHandshakeCompleted: ngtcp2_handshake_completed = { _, ud in
    guard let c = connection(ud) else { return failure }
    return c.handshakeCompleted() ? 0 : failure
}

private let quicRecvStreamData: ngtcp2_recv_stream_data = { conn, flags, id, _, data, len, ud, _ in
    guard let c = connection(ud) else { return failure }
    guard let h3 = c.h3 else { return 0 }
    let fin: Int32 = flags & UInt32(NGTCP2_STREAM_DATA_FLAG_FIN) != 0 ? 1 : 0
    let n = nghttp3_conn_read_stream(h3, id, data, len, fin)
    if n < 0 {
        ngtcp2_connection_close_error_set_application_error(
            &c.ccerr, nghttp3_err_infer_quic_app_error_code(Int32(n)), nil, 0)
        return failure
    }
    // Bytes nghttp3 consumed itself (framing, QPACK): credit them back at once; body bytes
    // are credited as the handler takes them (`consume`).
    if n > 0 {
        ngtcp2_conn_extend_max_stream_offset(conn, id, UInt64(n))
        ngtcp2_conn_extend_max_offset(conn, UInt64(n))
    }
    return 0
}

private let quicAckedStreamDataOffset: ngtcp2_acked_stream_data_offset = { _, id, _, len, ud, _ in
    guard let c = connection(ud) else { return failure }
    if let h3 = c.h3, nghttp3_conn_add_ack_offset(h3, id, len) != 0 { return failure }
    return 0
}

private let quicStreamClose: ngtcp2_stream_close = { conn, flags, id, code, ud, _ in
    guard let c = connection(ud) else { return failure }
    guard let h3 = c.h3 else { return 0 }
    let app = flags & UInt32(NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0 ? code : UInt64(NGHTTP3_H3_NO_ERROR)
    let rv = nghttp3_conn_close_stream(h3, id, app)
    if rv == NGHTTP3_ERR_STREAM_NOT_FOUND {
        // A request stream nghttp3 never saw a header for: give the client its stream credit.
        if ngtcp2_conn_is_local_stream(conn, id) == 0 && id & 0x2 == 0 { ngtcp2_conn_extend_max_streams_bidi(conn, 1) }
        return 0
    }
    return rv == 0 ? 0 : failure
}

private let quicStreamReset: ngtcp2_stream_reset = { _, id, _, _, ud, _ in
    guard let c = connection(ud) else { return failure }
    if let h3 = c.h3, nghttp3_conn_shutdown_stream_read(h3, id) != 0 { return failure }
    return 0
}

private let quicStreamStopSending: ngtcp2_stream_stop_sending = { _, id, _, ud, _ in
    guard let c = connection(ud) else { return failure }
    if let h3 = c.h3, nghttp3_conn_shutdown_stream_read(h3, id) != 0 { return failure }
    return 0
}

private let quicExtendMaxRemoteStreamsBidi: ngtcp2_extend_max_streams = { _, max, ud in
    guard let c = connection(ud) else { return failure }
    if let h3 = c.h3 { nghttp3_conn_set_max_client_streams_bidi(h3, max) }
    return 0
}

private let quicExtendMaxStreamData: ngtcp2_extend_max_stream_data = { _, id, _, ud, _ in
    guard let c = connection(ud) else { return failure }
    if let h3 = c.h3, nghttp3_conn_unblock_stream(h3, id) != 0 { return failure }
    return 0
}

extension QUICConnection {
    /// Creates the nghttp3 connection and binds its three unidirectional streams (RFC 9114
    /// §6.2: control; RFC 9204 §4.2: QPACK encoder and decoder).
    func setupHTTP3() -> Bool {
        if h3 != nil { return true }
        guard ngtcp2_conn_get_max_local_streams_uni(conn) >= 3 else { return false }
        let cfg = endpoint.configuration.settings
        var s = nghttp3_settings()
        berth_nghttp3_settings_default(&s)
        s.max_field_section_size = UInt64(cfg.maxFieldSectionSize)
        s.qpack_max_dtable_capacity = cfg.qpackTableCapacity
        s.qpack_blocked_streams = cfg.qpackBlockedStreams
        var p: OpaquePointer? = nil
        let me = Unmanaged.passUnretained(self).toOpaque()
        let rv = withUnsafePointer(to: HTTP3Callbacks.table) {
            berth_nghttp3_conn_server_new(&p, $0, &s, allocator.nghttp3, me)
        }
        guard rv == 0, let p else { return false }
        h3 = p
        if let params = ngtcp2_conn_get_local_transport_params(conn) {
            nghttp3_conn_set_max_client_streams_bidi(p, params.pointee.initial_max_streams_bidi)
        }
        var ctrl: Int64 = -1
        var enc: Int64 = -1
        var dec: Int64 = -1
        guard ngtcp2_conn_open_uni_stream(conn, &ctrl, nil) == 0,
            ngtcp2_conn_open_uni_stream(conn, &enc, nil) == 0,
            ngtcp2_conn_open_uni_stream(conn, &dec, nil) == 0,
            nghttp3_conn_bind_control_stream(p, ctrl) == 0,
            nghttp3_conn_bind_qpack_streams(p, enc, dec) == 0
        else { return false }
        return true
    }

    /// The handshake is done (RFC 9001 §4.1.1): the TLS facts handlers may log. False when
    /// the client's certificate does not satisfy the site's policy (the connection closes
    /// with the TLS alert as a CRYPTO_ERROR).
    func handshakeCompleted() -> Bool {
        connectionInfo.serverName = tls.serverName
        connectionInfo.tlsCipherSuite = tls.cipherSuite
        connectionInfo.tlsResumed = tls.resumed
        if let policy = tls.clientAuthPolicy {
            let chain = tls.peerChain
            // A full handshake was checked by GnuTLS's verify callback; a resumed one carries
            // the certificate of the session it resumes (or none), which must satisfy this
            // site's policy too — a ticket from another site of the server proves nothing.
            if tls.resumed && !policy.accepts(chain: chain) {
                // certificate_required (116) when none, else bad_certificate (42).
                ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, chain.isEmpty ? 116 : 42, nil, 0)
                return false
            }
            if let leaf = chain.first { connectionInfo.tlsClientCertificate = policy.fields(leaf: leaf) }
        }
        tls.sendSessionTicket()
        if countsAsHandshaking {
            countsAsHandshaking = false
            endpoint.handshaking -= 1
        }
        // Requests held back from early data can go now.
        if !readyQueue.isEmpty { endpoint.markDirty(self) }
        return true
    }

    /// Returns `n` request-body bytes of stream `id` to both receive windows (RFC 9000 §4.1).
    @inline(__always)
    func consume(_ id: Int64, _ n: Int) {
        guard n > 0, state == .open else { return }
        ngtcp2_conn_extend_max_stream_offset(conn, id, UInt64(n))
        ngtcp2_conn_extend_max_offset(conn, UInt64(n))
    }
}
