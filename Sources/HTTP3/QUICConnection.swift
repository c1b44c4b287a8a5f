internal import CGnuTLS
internal import CNGHTTP3
internal import CNGTCP2
import HTTPCore
import IOCore

/// One QUIC server connection (RFC 9000) carrying HTTP/3 (RFC 9114): owns its
/// `ngtcp2_conn`, its GnuTLS session (RFC 9001) and, once 1-RTT keys exist, its
/// `nghttp3_conn`; maps request streams onto pooled `HTTPRequest`/`HTTPResponse` pairs.
///
/// States (`state`):
///
///     open ──error / idle close──► closing (CONNECTION_CLOSE sent, resent on input, 3×PTO)
///      │  └─peer CONNECTION_CLOSE─► draining (silent, 3×PTO)          │
///      └─idle/handshake timeout (silent, RFC 9000 §10.1)──────────────┴──► closed (removed)
///
/// Graceful shutdown (RFC 9114 §5.2): GOAWAY with the maximum stream id, one PTO later the
/// final GOAWAY with the last accepted stream; once no request is in flight the connection
/// closes with H3_NO_ERROR.
final class QUICConnection {
    enum State: Equatable {
        case open, closing, draining, closed
    }

    unowned(unsafe) let endpoint: QUICEndpoint
    /// The endpoint's chunk pool, held strongly: streams return body chunks to it even while
    /// the connection is freed after the endpoint.
    let chunkPool: QUICChunkPool
    /// The allocator `conn` and `h3` live in: released only after they are freed.
    let allocator: QUICAllocator
    /// The ngtcp2 connection (set right after creation, freed in `deinit`).
    private(set) var conn: OpaquePointer!
    /// The TLS session (freed after `conn`).
    private(set) var tls: QUICTLSSession!
    /// The nghttp3 connection, once 1-RTT keys exist (RFC 9114 §3.3).
    var h3: OpaquePointer? = nil
    let responder: any HTTP3Responder
    var state: State = .open
    var ccerr = ngtcp2_connection_close_error()
    /// The CONNECTION_CLOSE sent, resent while closing (RFC 9000 §10.2.1).
    var closePacket: [UInt8] = []
    var closeECN: UInt32 = 0
    var closeDeadline: UInt64 = 0
    var packetsWhileClosing = 0
    /// 0: serving; 1: first GOAWAY sent (`shutdownDeadline` is when the final one goes);
    /// 2: final GOAWAY sent.
    var shutdownPhase = 0
    var shutdownDeadline: UInt64 = UInt64.max

    let serverCID: QUICConnectionID
    /// Every CID of this connection in the endpoint's routing table.
    var routedCIDs: [QUICConnectionID] = []
    var registered = false
    var countsAsHandshaking = false
    var armedDeadline: UInt64 = UInt64.max
    var inDirtyList = false
    /// Transport facts copied into every request.
    var connectionInfo = ConnectionInfo()

    /// Path storage for the write loop: the current packet's path and the batch's path.
    let ps: UnsafeMutablePointer<ngtcp2_path_storage>
    let batchPS: UnsafeMutablePointer<ngtcp2_path_storage>
    /// Stream data nghttp3 hands out for one packet.
    let vecs: UnsafeMutablePointer<nghttp3_vec>
    static let vecCount = 16

    // Streams (same bookkeeping as HTTP2Connection).
    var live: [HTTP3Stream] = []
    var pool: [HTTP3Stream] = []
    var readyQueue: [HTTP3Stream] = []
    /// The server has client-certificate policies: nothing is handled from 0-RTT data.
    let holdAllEarly: Bool
    var serviceQueue: [HTTP3Stream] = []
    var queuedStreams = 0
    /// Handlers holding an unfinished response.
    var handlersInFlight = 0
    var streamsServed = 0
    var streamsAllocated = 0
    /// When request-body bytes last arrived or a handler started or resumed reading: the
    /// read-body timer runs from here while a handler waits for body.
    var lastBodyActivity: UInt64 = 0

    init(endpoint: QUICEndpoint, header hd: inout ngtcp2_pkt_hd, originalDCID: ngtcp2_cid?, path: inout ngtcp2_path,
         acceptance: QUICAcceptance, now: UInt64) throws(QUICTLSError) {
        self.endpoint = endpoint
        chunkPool = endpoint.chunkPool
        allocator = endpoint.allocator
        responder = acceptance.responder
        holdAllEarly = acceptance.clientAuth != nil
        ps = .allocate(capacity: 1)
        ngtcp2_path_storage_zero(ps)
        batchPS = .allocate(capacity: 1)
        ngtcp2_path_storage_zero(batchPS)
        vecs = .allocate(capacity: QUICConnection.vecCount)
        var scid = endpoint.newConnectionID()
        serverCID = QUICConnectionID(&scid)
        let cfg = endpoint.configuration
        live.reserveCapacity(16)
        pool.reserveCapacity(cfg.limits.streamPoolSize)

        var settings = ngtcp2_settings()
        berth_ngtcp2_settings_default(&settings)
        settings.initial_ts = now
        settings.handshake_timeout = cfg.timeouts.handshake.nanos
        settings.max_window = UInt64(cfg.settings.maxReceiveWindow)
        settings.max_stream_window = UInt64(cfg.settings.maxReceiveWindow)
        settings.cc_algo = NGTCP2_CC_ALGO_CUBIC
        if cfg.debugLog { berth_ngtcp2_set_stderr_logger(&settings) }
        if originalDCID != nil { settings.token = hd.token }

        var params = ngtcp2_transport_params()
        berth_ngtcp2_transport_params_default(&params)
        params.initial_max_stream_data_bidi_local = UInt64(cfg.settings.streamReceiveWindow)
        params.initial_max_stream_data_bidi_remote = UInt64(cfg.settings.streamReceiveWindow)
        params.initial_max_stream_data_uni = UInt64(cfg.settings.streamReceiveWindow)
        params.initial_max_data = UInt64(cfg.settings.connectionReceiveWindow)
        params.initial_max_streams_bidi = UInt64(cfg.settings.maxConcurrentStreams)
        // RFC 9114 §6.2: control + QPACK encoder/decoder streams, plus room for grease.
        params.initial_max_streams_uni = 3
        params.max_idle_timeout = cfg.timeouts.idle.nanos
        params.active_connection_id_limit = UInt64(cfg.settings.activeConnectionIDLimit)
        if let o = originalDCID {
            // RFC 9000 §7.3: after a Retry, original_destination_connection_id is the DCID
            // of the very first Initial and retry_source_connection_id ours from the Retry.
            params.original_dcid = o
            params.retry_scid = hd.dcid
            params.retry_scid_present = 1
        } else {
            params.original_dcid = hd.dcid
        }
        params.stateless_reset_token_present = 1
        _ = withUnsafeMutableBytes(of: &params.stateless_reset_token) { t in
            endpoint.resetToken(for: &scid, into: t.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }

        var pconn: OpaquePointer? = nil
        let me = Unmanaged.passUnretained(self).toOpaque()
        let rv = withUnsafePointer(to: QUICCallbacks.table) { cb in
            berth_ngtcp2_conn_server_new(
                &pconn, &hd.scid, &scid, &path, hd.version, cb, &settings, &params, allocator.ngtcp2, me)
        }
        guard rv == 0, let pconn else { throw QUICTLSError("ngtcp2_conn_server_new", rv) }
        conn = pconn
        tls = try QUICTLSSession(
            credentials: acceptance.credentials, ticketKey: endpoint.ticketKey, antiReplay: endpoint.antiReplay,
            clientAuth: acceptance.clientAuth,
            localAddress: acceptance.clientAuth == nil
                ? nil : SocketAddress(storage: UnsafeRawPointer(path.local.addr), length: Int(path.local.addrlen))?.ipString,
            connection: me, getConn: quicGetConn)
        ngtcp2_conn_set_tls_native_handle(conn, UnsafeMutableRawPointer(tls.raw))
        connectionInfo.isTLS = true
        connectionInfo.remote = SocketAddress(storage: UnsafeRawPointer(path.remote.addr), length: Int(path.remote.addrlen))
        connectionInfo.local = SocketAddress(storage: UnsafeRawPointer(path.local.addr), length: Int(path.local.addrlen))
        connectionInfo.tlsProtocol = "h3"
        connectionInfo.tlsVersion = 0x0304
        connectionInfo.strictSNIHost = acceptance.clientAuth != nil
    }

    deinit {
        for s in live { s.recycle() }
        if let h3 { nghttp3_conn_del(h3) }
        if let conn { ngtcp2_conn_del(conn) }
        ps.deallocate()
        batchPS.deallocate()
        vecs.deallocate()
    }

    var isOpen: Bool { state == .open }

    /// Adds `cid` to the endpoint's routing table for this connection.
    func route(_ cid: QUICConnectionID) {
        routedCIDs.append(cid)
        endpoint.addRoute(cid, self)
    }

    /// The deadline the endpoint's timer should have for this connection.
    var nextDeadline: UInt64 {
        switch state {
        case .open:
            var e = ngtcp2_conn_get_expiry(conn)
            if shutdownPhase == 1 { e = min(e, shutdownDeadline) }
            if let b = bodyDeadline { e = min(e, b) }
            return e
        case .closing, .draining:
            return closeDeadline
        case .closed:
            return UInt64.max
        }
    }

    // MARK: Input

    /// One packet for this connection.
    func read(_ base: UnsafePointer<UInt8>, count: Int, path: inout ngtcp2_path, ecn: UInt32, now: UInt64) {
        switch state {
        case .closing:
            resendClose(path: &path)
            return
        case .draining, .closed:
            return
        case .open:
            break
        }
        var pi = ngtcp2_pkt_info(ecn: ecn)
        let rv = berth_ngtcp2_conn_read_pkt(conn, &path, &pi, base, count, now)
        if rv != 0 {
            readFailed(rv, now: now)
            return
        }
        endpoint.markDirty(self)
    }

    /// RFC 9000 §10.2.1: while closing, answer incoming packets with the stored
    /// CONNECTION_CLOSE, at an exponentially falling rate.
    private func resendClose(path: inout ngtcp2_path) {
        packetsWhileClosing += 1
        guard packetsWhileClosing & (packetsWhileClosing - 1) == 0, !closePacket.isEmpty else { return }
        closePacket.withUnsafeBytes { b in
            endpoint.send(b.baseAddress!, count: b.count, segmentSize: b.count, path: &path, ecn: closeECN)
        }
    }

    /// ngtcp2 refused a packet (ngtcp2.h:3768-3795).
    private func readFailed(_ rv: Int32, now: UInt64) {
        switch rv {
        case NGTCP2_ERR_DRAINING:
            startDraining(now: now)
        case NGTCP2_ERR_DROP_CONN:
            endpoint.remove(self)
        case NGTCP2_ERR_RETRY:
            // Only for 0-RTT we never enabled; nothing to keep.
            endpoint.remove(self)
        case NGTCP2_ERR_CRYPTO:
            if ccerr.error_code == 0 {
                ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(conn), nil, 0)
            }
            startClosing(now: now)
        default:
            if ccerr.error_code == 0 { ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nil, 0) }
            startClosing(now: now)
        }
    }

    // MARK: Processing

    /// Dispatches ready requests, delivers bodies and notifications, writes packets, and
    /// rearms the timer (from the endpoint's `flush`).
    func process(now: UInt64) {
        guard state == .open else {
            endpoint.updateTimer(self)
            return
        }
        settle()
        if state == .open { write(now: now) }
        if countsAsHandshaking && state == .open && ngtcp2_conn_get_handshake_completed(conn) != 0 {
            countsAsHandshaking = false
            endpoint.handshaking -= 1
        }
        endpoint.updateTimer(self)
    }

    /// Runs streams until nothing changes (bounded).
    func settle() {
        var rounds = 0
        while state == .open && rounds < 16 {
            if !readyQueue.isEmpty { dispatchReady() }
            if !serviceQueue.isEmpty { serviceStreams() }
            rounds += 1
            if serviceQueue.isEmpty && !hasDispatchable { break }
        }
        checkShutdown()
    }

    /// The write loop (ngtcp2 0.12 `examples/server.cc` `write_streams`): nghttp3 supplies
    /// stream data, ngtcp2 packs it (with ACKs, retransmissions and control frames) into
    /// packets of at most the path's payload size; packets of one path and ECN value are
    /// batched for UDP GSO up to the send quantum (ngtcp2's pacing and congestion window
    /// stop the loop with 0).
    func write(now: UInt64) {
        let maxUDP = ngtcp2_conn_get_max_tx_udp_payload_size(conn)
        let pathMaxUDP = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn)
        let bufferPackets = QUICEndpoint.txBufferSize / max(maxUDP, 1)
        let maxPackets = max(1, min(bufferPackets, min(64, ngtcp2_conn_get_send_quantum(conn) / max(maxUDP, 1))))
        let buf = endpoint.txBuffer.assumingMemoryBound(to: UInt8.self)
        var used = 0
        var packets = 0
        var segment = 0
        var batchECN: UInt32 = 0
        var pi = ngtcp2_pkt_info()
        var batches = 0
        let ngvecs = UnsafeMutableRawPointer(vecs).assumingMemoryBound(to: ngtcp2_vec.self)

        func sendBatch() {
            if used > 0 {
                endpoint.send(buf, count: used, segmentSize: segment, path: &batchPS.pointee.path, ecn: batchECN)
            }
            used = 0
            packets = 0
            segment = 0
            batches += 1
        }

        while true {
            var streamID: Int64 = -1
            var fin: Int32 = 0
            var count = 0
            if let h3, ngtcp2_conn_get_max_data_left(conn) > 0 {
                let n = nghttp3_conn_writev_stream(h3, &streamID, &fin, vecs, QUICConnection.vecCount)
                if n < 0 {
                    ngtcp2_connection_close_error_set_application_error(
                        &ccerr, nghttp3_err_infer_quic_app_error_code(Int32(n)), nil, 0)
                    sendBatch()
                    startClosing(now: now)
                    return
                }
                count = n
            }
            var flags = UInt32(NGTCP2_WRITE_STREAM_FLAG_MORE)
            if fin != 0 { flags |= UInt32(NGTCP2_WRITE_STREAM_FLAG_FIN) }
            var datalen: Int = -1
            let nw = berth_ngtcp2_conn_writev_stream(
                conn, &ps.pointee.path, &pi, buf + used, maxUDP, &datalen, flags, streamID, ngvecs, count, now)
            if nw < 0 {
                switch Int32(nw) {
                case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                    nghttp3_conn_block_stream(h3, streamID)
                    continue
                case NGTCP2_ERR_STREAM_SHUT_WR:
                    nghttp3_conn_shutdown_stream_write(h3, streamID)
                    continue
                case NGTCP2_ERR_WRITE_MORE:
                    if nghttp3_conn_add_write_offset(h3, streamID, datalen) != 0 {
                        sendBatch()
                        failInternal(now: now)
                        return
                    }
                    continue
                default:
                    sendBatch()
                    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, Int32(nw), nil, 0)
                    startClosing(now: now)
                    return
                }
            }
            if datalen >= 0, let h3, streamID >= 0 {
                if nghttp3_conn_add_write_offset(h3, streamID, datalen) != 0 {
                    sendBatch()
                    failInternal(now: now)
                    return
                }
            }
            if nw == 0 {
                // Nothing more now: congestion- or pacing-limited, or idle.
                sendBatch()
                ngtcp2_conn_update_pkt_tx_time(conn, now)
                return
            }
            let n = nw
            if packets == 0 {
                ngtcp2_path_copy(&batchPS.pointee.path, &ps.pointee.path)
                batchECN = pi.ecn
                segment = n
            } else if ngtcp2_path_eq(&batchPS.pointee.path, &ps.pointee.path) == 0 || batchECN != pi.ecn
                || n > segment || (segment > pathMaxUDP && n != segment)
            {
                // This packet cannot join the batch: send the batch, then it alone.
                endpoint.send(buf, count: used, segmentSize: segment, path: &batchPS.pointee.path, ecn: batchECN)
                endpoint.send(buf + used, count: n, segmentSize: n, path: &ps.pointee.path, ecn: pi.ecn)
                used = 0
                packets = 0
                segment = 0
                ngtcp2_conn_update_pkt_tx_time(conn, now)
                endpoint.markDirty(self)
                return
            }
            used += n
            packets += 1
            if packets >= maxPackets || n < segment {
                sendBatch()
                if batches >= 8 {
                    // Bounded work per turn; the endpoint comes back to us.
                    ngtcp2_conn_update_pkt_tx_time(conn, now)
                    endpoint.markDirty(self)
                    return
                }
            }
        }
    }

    private func failInternal(now: UInt64) {
        ngtcp2_connection_close_error_set_application_error(&ccerr, UInt64(NGHTTP3_H3_INTERNAL_ERROR), nil, 0)
        startClosing(now: now)
    }

    // MARK: Timers

    /// The timer reached this connection's deadline.
    func handleExpiry(now: UInt64) {
        switch state {
        case .closing, .draining:
            if now >= closeDeadline { endpoint.remove(self) } else { endpoint.updateTimer(self) }
        case .closed:
            return
        case .open:
            if shutdownPhase == 1 && now >= shutdownDeadline { sendFinalGoAway() }
            if let b = bodyDeadline, now >= b { bodyTimedOut() }
            let rv = ngtcp2_conn_handle_expiry(conn, now)
            if rv != 0 {
                if rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT {
                    // RFC 9000 §10.1: an idle timeout closes silently.
                    endpoint.remove(self)
                    return
                }
                ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nil, 0)
                startClosing(now: now)
                return
            }
            endpoint.markDirty(self)
        }
    }

    /// When the read-body timeout fires, if a handler waits for request body.
    var bodyDeadline: UInt64? {
        guard handlersInFlight > 0 else { return nil }
        for s in live where s.awaitsBody {
            return lastBodyActivity &+ endpoint.configuration.timeouts.readBody.nanos
        }
        return nil
    }

    /// No request body for the read-body timeout: the waiting readers fail with `.timedOut`
    /// and their streams are cancelled (H3_REQUEST_CANCELLED, RFC 9114 §8.1).
    func bodyTimedOut() {
        for s in live where s.awaitsBody {
            s.failReader(.timedOut)
            resetStream(s, UInt64(NGHTTP3_H3_REQUEST_CANCELLED))
        }
        lastBodyActivity = Clock.monotonicNanos()
    }

    // MARK: Closing

    /// Sends CONNECTION_CLOSE with `ccerr` and enters the closing period (RFC 9000 §10.2.1).
    func startClosing(now: UInt64) {
        guard state == .open else { return }
        if ngtcp2_conn_is_in_draining_period(conn) != 0 {
            startDraining(now: now)
            return
        }
        var pi = ngtcp2_pkt_info()
        let buf = endpoint.txBuffer.assumingMemoryBound(to: UInt8.self)
        let n = berth_ngtcp2_conn_write_connection_close(
            conn, &ps.pointee.path, &pi, buf, ngtcp2_conn_get_max_tx_udp_payload_size(conn), &ccerr, now)
        guard n > 0 else {
            endpoint.remove(self)
            return
        }
        closePacket = Array(UnsafeBufferPointer(start: buf, count: n))
        closeECN = pi.ecn
        endpoint.send(buf, count: n, segmentSize: n, path: &ps.pointee.path, ecn: pi.ecn)
        state = .closing
        closeDeadline = now &+ 3 &* ngtcp2_conn_get_pto(conn)
        teardownStreams()
        endpoint.updateTimer(self)
    }

    /// The peer closed (RFC 9000 §10.2.2): no more packets from us; wait 3×PTO.
    func startDraining(now: UInt64) {
        guard state == .open else { return }
        state = .draining
        closeDeadline = now &+ 3 &* ngtcp2_conn_get_pto(conn)
        teardownStreams()
        endpoint.updateTimer(self)
    }

    /// Closes at once with H3_NO_ERROR (grace period over): one CONNECTION_CLOSE, no
    /// closing period.
    func closeNow(now: UInt64) {
        guard state == .open else { return }
        ngtcp2_connection_close_error_set_application_error(&ccerr, UInt64(NGHTTP3_H3_NO_ERROR), nil, 0)
        startClosing(now: now)
    }

    /// Starts a graceful shutdown (RFC 9114 §5.2).
    func beginGracefulShutdown(now: UInt64) {
        guard state == .open, shutdownPhase == 0 else { return }
        guard let h3 else {
            // Still in the handshake: nothing to wait for.
            closeNow(now: now)
            return
        }
        if nghttp3_conn_submit_shutdown_notice(h3) != 0 {
            closeNow(now: now)
            return
        }
        shutdownPhase = 1
        // "At least one round trip" before the final GOAWAY (nghttp3.h:2353).
        shutdownDeadline = now &+ max(ngtcp2_conn_get_pto(conn), 50_000_000)
        endpoint.markDirty(self)
    }

    /// The final GOAWAY carries the last stream we accepted; later streams are rejected by
    /// nghttp3 (RFC 9114 §5.2).
    func sendFinalGoAway() {
        guard shutdownPhase == 1, let h3 else { return }
        shutdownPhase = 2
        _ = nghttp3_conn_shutdown(h3)
        endpoint.markDirty(self)
    }

    /// A handler's `Connection: close` (or the server draining) asks for a graceful end.
    func requestGracefulShutdown() {
        beginGracefulShutdown(now: Clock.monotonicNanos())
    }

    /// After the final GOAWAY: close once no request is in flight.
    func checkShutdown() {
        if shutdownPhase == 2 && live.isEmpty && handlersInFlight == 0 {
            closeNow(now: Clock.monotonicNanos())
        }
    }

    /// The endpoint forgot this connection: everything stops.
    func teardown() {
        if state != .closed {
            teardownStreams()
            state = .closed
        }
    }
}

/// ngtcp2's GnuTLS glue finds the connection through the session's `conn_ref`.
let quicGetConn: ngtcp2_crypto_get_conn = { ref in
    guard let ud = ref?.pointee.user_data else { return nil }
    return Unmanaged<QUICConnection>.fromOpaque(ud).takeUnretainedValue().conn
}
