import CNGHTTP2
import Foundation

/// A test-only HTTP/2 client: an nghttp2 client session driven in memory (`send()` produces
/// bytes for the server, `receive(_:)` takes the server's bytes).
final class H2Client {
    struct Response {
        var status = 0
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// END_STREAM seen.
        var ended = false
        /// The stream closed; `closeCode` is nghttp2's error code for it (0 = NO_ERROR).
        var closed = false
        var closeCode: UInt32 = 0
        /// Informational (1xx) statuses seen before the final one.
        var informational: [Int] = []
        /// Fields of a trailing HEADERS frame (after DATA).
        var trailers: [(String, String)] = []

        var bodyString: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
    }

    /// A request body served by the client's data provider.
    final class BodySource {
        var bytes: [UInt8]
        var offset = 0
        var endStream: Bool
        /// Sent as a trailing HEADERS frame once the body is out (RFC 9113 §8.1).
        var trailers: [(String, String)] = []
        init(_ bytes: [UInt8], endStream: Bool) {
            self.bytes = bytes
            self.endStream = endStream
        }
    }

    private(set) var session: OpaquePointer!
    var responses: [Int32: Response] = [:]
    var goAways: [(lastStreamID: Int32, code: UInt32)] = []
    var pingAcks = 0
    var recvError: Int = 0
    private var bodies: [Int32: BodySource] = [:]
    private let callbacks: OpaquePointer

    /// - Parameters:
    ///   - initialWindow: SETTINGS_INITIAL_WINDOW_SIZE the client advertises.
    ///   - manualWindow: when true, DATA is not acknowledged until `consume` is called.
    init(initialWindow: Int = 65535, manualWindow: Bool = false, maxConcurrentStreams: Int = 100) {
        var cbs: OpaquePointer? = nil
        nghttp2_session_callbacks_new(&cbs)
        callbacks = cbs!
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, ud in
            guard let frame, let ud else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            let c = Unmanaged<H2Client>.fromOpaque(ud).takeUnretainedValue()
            let id = frame.pointee.hd.stream_id
            if c.responses[id] == nil { c.responses[id] = Response() }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nl, value, vl, _, ud in
            guard let frame, let ud else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            let c = Unmanaged<H2Client>.fromOpaque(ud).takeUnretainedValue()
            let id = frame.pointee.hd.stream_id
            let n = String(decoding: UnsafeBufferPointer(start: name, count: nl), as: UTF8.self)
            let v = String(decoding: UnsafeBufferPointer(start: value, count: vl), as: UTF8.self)
            var r = c.responses[id] ?? Response()
            if n == ":status" {
                let code = Int(v) ?? 0
                if code < 200 {
                    r.informational.append(code)
                } else {
                    r.status = code
                }
            } else if frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS && r.status >= 200 {
                r.trailers.append((n, v))
            } else {
                r.headers.append((n, v))
            }
            c.responses[id] = r
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, id, data, len, ud in
            guard let ud else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            let c = Unmanaged<H2Client>.fromOpaque(ud).takeUnretainedValue()
            c.responses[id, default: Response()].body.append(contentsOf: UnsafeBufferPointer(start: data, count: len))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, ud in
            guard let frame, let ud else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            let c = Unmanaged<H2Client>.fromOpaque(ud).takeUnretainedValue()
            let hd = frame.pointee.hd
            switch UInt32(hd.type) {
            case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
                if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
                    c.responses[hd.stream_id, default: Response()].ended = true
                }
            case NGHTTP2_GOAWAY.rawValue:
                c.goAways.append((frame.pointee.goaway.last_stream_id, frame.pointee.goaway.error_code))
            case NGHTTP2_PING.rawValue:
                if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { c.pingAcks += 1 }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, id, code, ud in
            guard let ud else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            let c = Unmanaged<H2Client>.fromOpaque(ud).takeUnretainedValue()
            c.responses[id, default: Response()].closed = true
            c.responses[id, default: Response()].closeCode = code
            c.bodies[id] = nil
            return 0
        }
        var opt: OpaquePointer? = nil
        nghttp2_option_new(&opt)
        if manualWindow { nghttp2_option_set_no_auto_window_update(opt, 1) }
        var s: OpaquePointer? = nil
        nghttp2_session_client_new2(&s, callbacks, nil, opt)
        nghttp2_option_del(opt)
        session = s
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())
        var iv = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(initialWindow)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(maxConcurrentStreams)),
        ]
        nghttp2_submit_settings(session, 0, &iv, iv.count)
    }

    deinit {
        nghttp2_session_del(session)
        nghttp2_session_callbacks_del(callbacks)
    }

    /// Submits a request; returns its stream id.
    @discardableResult
    func request(
        _ method: String = "GET", _ path: String = "/", authority: String? = "example.com",
        headers: [(String, String)] = [], body: [UInt8]? = nil, endStream: Bool = true,
        trailers: [(String, String)] = []
    ) -> Int32 {
        var pairs: [(String, String)] = [(":method", method), (":scheme", "https"), (":path", path)]
        if let authority { pairs.append((":authority", authority)) }
        pairs += headers
        let id: Int32 = withNV(pairs) { nva in
            if let body {
                let src = BodySource(body, endStream: endStream)
                src.trailers = trailers
                var prd = nghttp2_data_provider(
                    source: nghttp2_data_source(ptr: Unmanaged.passUnretained(src).toOpaque()),
                    read_callback: { session, streamID, buf, length, flags, source, _ in
                        let src = Unmanaged<BodySource>.fromOpaque(source!.pointee.ptr!).takeUnretainedValue()
                        let n = min(length, src.bytes.count - src.offset)
                        if n > 0 {
                            src.bytes.withUnsafeBufferPointer { b in
                                buf!.update(from: b.baseAddress! + src.offset, count: n)
                            }
                        }
                        src.offset += n
                        if src.offset == src.bytes.count {
                            if src.endStream {
                                flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                                if !src.trailers.isEmpty {
                                    // nghttp2 documents submitting trailers from here.
                                    flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                                    H2Client.submitTrailers(session, streamID, src.trailers)
                                    src.trailers = []
                                }
                            } else if n == 0 {
                                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
                            }
                        }
                        return n
                    })
                let id = nghttp2_submit_request(session, nil, nva, nva.count, &prd, nil)
                bodies[id] = src
                return id
            }
            return nghttp2_submit_request(session, nil, nva, nva.count, nil, nil)
        }
        responses[id] = Response()
        return id
    }

    /// A trailing HEADERS frame with END_STREAM on `id`.
    static func submitTrailers(_ session: OpaquePointer?, _ id: Int32, _ pairs: [(String, String)]) {
        withNV(pairs) { nva in _ = nghttp2_submit_trailer(session, id, nva, nva.count) }
    }

    /// Adds more body to a request submitted with `endStream: false`.
    func sendBody(_ id: Int32, _ bytes: [UInt8], end: Bool) {
        guard let src = bodies[id] else { return }
        src.bytes += bytes
        src.endStream = end
        nghttp2_session_resume_data(session, id)
    }

    func reset(_ id: Int32, code: UInt32 = NGHTTP2_CANCEL.rawValue) {
        nghttp2_submit_rst_stream(session, 0, id, code)
    }

    func ping() {
        nghttp2_submit_ping(session, 0, nil)
    }

    /// Acknowledges `n` bytes of DATA on `id` (manual window mode).
    func consume(_ id: Int32, _ n: Int) {
        nghttp2_session_consume(session, id, n)
    }

    /// Everything the client wants to send now.
    func send() -> [UInt8] {
        var out: [UInt8] = []
        while true {
            var p: UnsafePointer<UInt8>? = nil
            let n = nghttp2_session_mem_send(session, &p)
            if n <= 0 { break }
            out.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        }
        return out
    }

    /// Feeds the server's bytes.
    func receive(_ bytes: [UInt8]) {
        let n = bytes.withUnsafeBufferPointer { nghttp2_session_mem_recv(session, $0.baseAddress, $0.count) }
        if n < 0 { recvError = n }
    }

    var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
}
