internal import CNGHTTP2
import Glibc
import HTTPCore
import IOCore

/// The nghttp2 callback table, built once per process (nghttp2 copies it into each session).
/// Every trampoline recovers its connection from the session's user data (unretained) and
/// fails the session if it is NULL.
final class NGHTTP2Callbacks: @unchecked Sendable {
    /// Immutable after `init`; nghttp2 only reads it in `nghttp2_session_server_new2`.
    let raw: OpaquePointer

    static let server = NGHTTP2Callbacks()

    private init() {
        var p: OpaquePointer? = nil
        guard nghttp2_session_callbacks_new(&p) == 0, let p else { fatalError("nghttp2_session_callbacks_new") }
        raw = p
        nghttp2_session_callbacks_set_send_callback(raw, h2Send)
        nghttp2_session_callbacks_set_send_data_callback(raw, h2SendData)
        nghttp2_session_callbacks_set_on_begin_headers_callback(raw, h2BeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(raw, h2Header)
        nghttp2_session_callbacks_set_on_frame_recv_callback(raw, h2FrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw, h2DataChunk)
        nghttp2_session_callbacks_set_on_frame_send_callback(raw, h2FrameSend)
        nghttp2_session_callbacks_set_on_stream_close_callback(raw, h2StreamClose)
    }

    deinit { nghttp2_session_callbacks_del(raw) }
}

private let callbackFailure = NGHTTP2_ERR_CALLBACK_FAILURE.rawValue

@inline(__always)
private func conn(_ ud: UnsafeMutableRawPointer?) -> HTTP2Connection? {
    guard let ud else { return nil }
    return Unmanaged<HTTP2Connection>.fromOpaque(ud).takeUnretainedValue()
}

@inline(__always)
private func stream(_ session: OpaquePointer?, _ id: Int32) -> HTTP2Stream? {
    guard let p = nghttp2_session_get_stream_user_data(session, id) else { return nil }
    return Unmanaged<HTTP2Stream>.fromOpaque(p).takeUnretainedValue()
}

/// Serialised frames (everything but DATA payloads) go straight into `output`.
private let h2Send: nghttp2_send_callback = { _, data, length, _, ud in
    guard let c = conn(ud), let data else { return Int(callbackFailure) }
    return c.write(UnsafeRawBufferPointer(start: data, count: length))
}

/// A DATA frame whose payload comes from the stream's `bodyOut` (NGHTTP2_DATA_FLAG_NO_COPY).
private let h2SendData: nghttp2_send_data_callback = { _, frame, framehd, length, source, ud in
    guard let c = conn(ud), let framehd, let p = source?.pointee.ptr else { return callbackFailure }
    if c.outputFull { return NGHTTP2_ERR_WOULDBLOCK.rawValue }
    let s = Unmanaged<HTTP2Stream>.fromOpaque(p).takeUnretainedValue()
    s.writeData(header: framehd, length: length, into: c.output)
    return 0
}

/// The data provider of every response with a body.
let h2ReadBody: nghttp2_data_source_read_callback = { _, _, _, length, flags, source, _ in
    guard let flags, let p = source?.pointee.ptr else { return Int(callbackFailure) }
    return Unmanaged<HTTP2Stream>.fromOpaque(p).takeUnretainedValue().readBody(length: length, flags: flags)
}

private let h2BeginHeaders: nghttp2_on_begin_headers_callback = { session, frame, ud in
    guard let c = conn(ud), let frame else { return callbackFailure }
    guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    c.openStream(id: frame.pointee.hd.stream_id)
    return 0
}

private let h2Header: nghttp2_on_header_callback = { session, frame, name, namelen, value, valuelen, _, ud in
    guard let c = conn(ud), let frame else { return callbackFailure }
    guard let s = stream(session, frame.pointee.hd.stream_id) else { return 0 }
    let n = UnsafeRawBufferPointer(start: name, count: namelen)
    let v = UnsafeRawBufferPointer(start: value, count: valuelen)
    if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
        if case .bomb = s.addField(name: n, value: v, limits: c.limits, maxList: c.settings.maxHeaderListSize) {
            c.pendingViolation = .decodedHeadersTooLarge
            return callbackFailure
        }
    } else {
        // The request's trailer section (RFC 9113 §8.1).
        if case .bomb = s.addTrailer(name: n, value: v, limits: c.limits, maxList: c.settings.maxHeaderListSize) {
            c.pendingViolation = .decodedHeadersTooLarge
            return callbackFailure
        }
    }
    return 0
}

private let h2FrameRecv: nghttp2_on_frame_recv_callback = { session, frame, ud in
    guard let c = conn(ud), let frame else { return callbackFailure }
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
        guard let s = stream(session, hd.stream_id) else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            s.headComplete(endStream: endStream)
            c.headReady(s)
        } else if endStream {
            s.receiveEnd()
        }
    case NGHTTP2_DATA.rawValue:
        if endStream, let s = stream(session, hd.stream_id) { s.receiveEnd() }
    case NGHTTP2_PING.rawValue:
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
            var opaque = frame.pointee.ping.opaque_data
            let ours = withUnsafeBytes(of: &opaque) { HTTP2Connection.isShutdownPing($0) }
            if ours { c.shutdownPingAcknowledged() }
        }
    default:
        break
    }
    return 0
}

private let h2DataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, id, data, len, ud in
    guard let c = conn(ud) else { return callbackFailure }
    if let s = stream(session, id) {
        s.receiveData(UnsafeRawBufferPointer(start: data, count: len))
        if s.drainBudget >= 0 { c.bodyDrained(s, len) }
    } else {
        // A stream we no longer track (refused or recycled): give the window back.
        nghttp2_session_consume(session, id, len)
        _ = c
    }
    return 0
}

private let h2FrameSend: nghttp2_on_frame_send_callback = { session, frame, ud in
    guard let c = conn(ud), let frame else { return callbackFailure }
    let hd = frame.pointee.hd
    switch UInt32(hd.type) {
    case NGHTTP2_RST_STREAM.rawValue:
        c.sentReset(code: HTTP2ErrorCode(code: frame.pointee.rst_stream.error_code))
    case NGHTTP2_GOAWAY.rawValue:
        c.sentGoAway = HTTP2GoAway(
            lastStreamID: frame.pointee.goaway.last_stream_id,
            errorCode: HTTP2ErrorCode(code: frame.pointee.goaway.error_code))
    case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
        if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0, let s = stream(session, hd.stream_id) {
            c.localEnded(s)
        }
    default:
        break
    }
    return 0
}

private let h2StreamClose: nghttp2_on_stream_close_callback = { session, id, code, ud in
    guard let c = conn(ud) else { return callbackFailure }
    if let s = stream(session, id) {
        nghttp2_session_set_stream_user_data(session, id, nil)
        c.streamClosed(s, code: HTTP2ErrorCode(code: code))
    }
    return 0
}

// MARK: - nghttp2 calls the streams make

extension HTTP2Connection {
    /// Appends serialised frames, unless `output` is over `maxPendingOutput` (then nghttp2
    /// keeps them queued: back-pressure towards a peer that does not read).
    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        if outputFull { return Int(NGHTTP2_ERR_WOULDBLOCK.rawValue) }
        output.append(bytes)
        return bytes.count
    }

    @inline(__always)
    var outputFull: Bool { !flushAll && output.readableBytes >= limits.maxPendingOutput }

    /// Queues the response HEADERS built in `s.nva`, with the data provider when a body
    /// follows (RFC 9113 §8.1).
    func submitResponse(_ s: HTTP2Stream, withBody: Bool) {
        let rv: Int32 = s.nva.withUnsafeBufferPointer { nv in
            if withBody {
                var prd = nghttp2_data_provider(
                    source: nghttp2_data_source(ptr: Unmanaged.passUnretained(s).toOpaque()), read_callback: h2ReadBody)
                return nghttp2_submit_response(session.raw, s.id, nv.baseAddress, nv.count, &prd)
            }
            return nghttp2_submit_response(session.raw, s.id, nv.baseAddress, nv.count, nil)
        }
        if rv != 0 { resetStream(s, .internalError) }
    }

    /// Trailer fields of `s` as the last HEADERS frame (names lower-cased, values sanitised;
    /// nghttp2 copies them).
    func submitTrailers(_ s: HTTP2Stream, _ fields: HTTPFields) {
        var storage: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        for i in 0..<fields.count {
            fields.withField(i) { name, value in
                guard !name.isEmpty, name.allSatisfy({ HTTP2Stream.isTchar($0) }) else { return }
                let ns = storage.count
                for c in name { storage.append(c >= 0x41 && c <= 0x5A ? c | 0x20 : c) }
                let vs = storage.count
                for c in value { storage.append(c == 0x0D || c == 0x0A || c == 0x00 ? 0x20 : c) }
                spans.append((ns, name.count, vs, value.count))
            }
        }
        storage.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            var nva = spans.map { sp in
                nghttp2_nv(name: base + sp.0, value: base + sp.2, namelen: sp.1, valuelen: sp.3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            _ = nghttp2_submit_trailer(session.raw, s.id, &nva, nva.count)
        }
    }

    /// `100 Continue` as an informational HEADERS frame (RFC 9113 §8.1).
    func submitContinue(_ s: HTTP2Stream) {
        let name: StaticString = ":status"
        let value: StaticString = "100"
        var nv = nghttp2_nv(
            name: UnsafeMutablePointer(mutating: name.utf8Start),
            value: UnsafeMutablePointer(mutating: value.utf8Start),
            namelen: 7, valuelen: 3,
            flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
        _ = nghttp2_submit_headers(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, nil, &nv, 1, nil)
    }

    /// RST_STREAM for `s` (RFC 9113 §6.4).
    func resetStream(_ s: HTTP2Stream, _ code: HTTP2ErrorCode) {
        _ = nghttp2_submit_rst_stream(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, code.rawValue)
    }

    /// Returns `n` delivered (or discarded) body bytes to both receive windows; nghttp2 sends
    /// WINDOW_UPDATE once enough is consumed.
    func consume(_ s: HTTP2Stream, _ n: Int) {
        if n > 0 && state != .closed { _ = nghttp2_session_consume(session.raw, s.id, n) }
    }

    func resumeData(_ s: HTTP2Stream) {
        if state != .closed { _ = nghttp2_session_resume_data(session.raw, s.id) }
    }

    /// The high-water mark of `s`'s unsent body: the smaller of the peer's stream and
    /// connection send windows, clamped to the configured range.
    func writeHighWater(_ s: HTTP2Stream) -> Int {
        let sw = Int(nghttp2_session_get_stream_remote_window_size(session.raw, s.id))
        let cw = Int(nghttp2_session_get_remote_window_size(session.raw))
        return max(limits.minStreamWriteBuffer, min(min(sw, cw), limits.maxStreamWriteBuffer))
    }

    /// Payload of the PING sent with a graceful shutdown.
    static let shutdownPing: StaticString = "berthGA!"

    static func isShutdownPing(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count == 8 && memcmp(b.baseAddress!, shutdownPing.utf8Start, 8) == 0
    }
}
