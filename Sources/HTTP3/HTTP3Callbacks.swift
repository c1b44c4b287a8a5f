internal import CNGHTTP3
internal import CNGTCP2
import HTTPCore
import IOCore

/// The nghttp3 callback table (nghttp3.h:1815-1890), built once. Connection user data is the
/// `QUICConnection` (unretained); stream user data the `HTTP3Stream`.
enum HTTP3Callbacks {
    static let table: nghttp3_callbacks = {
        var cb = nghttp3_callbacks()
        cb.acked_stream_data = h3AckedStreamData
        cb.stream_close = h3StreamClose
        cb.recv_data = h3RecvData
        cb.deferred_consume = h3DeferredConsume
        cb.begin_headers = h3BeginHeaders
        cb.recv_header = h3RecvHeader
        cb.end_headers = h3EndHeaders
        cb.recv_trailer = h3RecvTrailer
        cb.stop_sending = h3StopSending
        cb.end_stream = h3EndStream
        cb.reset_stream = h3ResetStream
        return cb
    }()
}

private let failure = NGHTTP3_ERR_CALLBACK_FAILURE

@inline(__always)
private func connection(_ ud: UnsafeMutableRawPointer?) -> QUICConnection? {
    guard let ud else { return nil }
    return Unmanaged<QUICConnection>.fromOpaque(ud).takeUnretainedValue()
}

@inline(__always)
private func stream(_ sud: UnsafeMutableRawPointer?) -> HTTP3Stream? {
    guard let sud else { return nil }
    return Unmanaged<HTTP3Stream>.fromOpaque(sud).takeUnretainedValue()
}

@inline(__always)
private func bytes(_ rc: OpaquePointer?) -> UnsafeRawBufferPointer {
    let v = nghttp3_rcbuf_get_buf(rc)
    return UnsafeRawBufferPointer(start: v.base, count: v.len)
}

/// The peer acknowledged `len` more body bytes: they can be dropped (RFC 9000 §13.3).
private let h3AckedStreamData: nghttp3_acked_stream_data = { _, _, len, _, sud in
    stream(sud)?.acknowledged(Int(len))
    return 0
}

/// A request stream closed both ways (or was reset).
private let h3StreamClose: nghttp3_stream_close = { _, id, code, ud, sud in
    guard let c = connection(ud) else { return failure }
    if let s = stream(sud) { c.streamClosed(s, code: code) }
    // RFC 9000 §4.6: a closed client bidirectional stream is one more the client may open.
    if id & 0x3 == 0 && c.state == .open { ngtcp2_conn_extend_max_streams_bidi(c.conn, 1) }
    return 0
}

private let h3RecvData: nghttp3_recv_data = { _, id, data, len, ud, sud in
    guard let c = connection(ud) else { return failure }
    if let s = stream(sud) {
        s.receiveData(UnsafeRawBufferPointer(start: data, count: len))
    } else {
        c.consume(id, len)
    }
    return 0
}

private let h3DeferredConsume: nghttp3_deferred_consume = { _, id, consumed, ud, _ in
    guard let c = connection(ud) else { return failure }
    c.consume(id, consumed)
    return 0
}

private let h3BeginHeaders: nghttp3_begin_headers = { h3, id, ud, sud in
    guard let c = connection(ud) else { return failure }
    if sud != nil { return 0 }
    let s = c.openStream(id: id)
    nghttp3_conn_set_stream_user_data(h3, id, Unmanaged.passUnretained(s).toOpaque())
    return 0
}

private let h3RecvHeader: nghttp3_recv_header = { _, _, token, name, value, _, ud, sud in
    guard let c = connection(ud), let s = stream(sud) else { return 0 }
    s.addField(name: bytes(name), value: bytes(value), token: token, limits: c.endpoint.configuration.limits)
    return 0
}

private let h3EndHeaders: nghttp3_end_headers = { _, _, fin, ud, sud in
    guard let c = connection(ud), let s = stream(sud) else { return 0 }
    s.headComplete(endStream: fin != 0)
    c.headReady(s)
    return 0
}

/// One field of the request's trailer section (after the body's DATA frames).
private let h3RecvTrailer: nghttp3_recv_header = { _, _, _, name, value, _, ud, sud in
    guard let c = connection(ud), let s = stream(sud) else { return 0 }
    s.addTrailer(name: bytes(name), value: bytes(value), limits: c.endpoint.configuration.limits)
    return 0
}

private let h3StopSending: nghttp3_stop_sending = { _, id, code, ud, _ in
    guard let c = connection(ud) else { return failure }
    if c.state == .open, ngtcp2_conn_shutdown_stream_read(c.conn, id, code) != 0 { return failure }
    return 0
}

private let h3ResetStream: nghttp3_reset_stream = { _, id, code, ud, _ in
    guard let c = connection(ud) else { return failure }
    if c.state == .open, ngtcp2_conn_shutdown_stream_write(c.conn, id, code) != 0 { return failure }
    return 0
}

private let h3EndStream: nghttp3_end_stream = { _, _, _, sud in
    stream(sud)?.receiveEnd()
    return 0
}

/// The data reader of every response with a body: hands out the stream's unsent body in
/// place (it stays put until acknowledged).
let h3ReadData: nghttp3_read_data_callback = { _, _, vec, veccnt, pflags, _, sud in
    guard let s = stream(sud), let vec, let pflags else { return Int(failure) }
    return s.readData(vec, veccnt, pflags)
}
