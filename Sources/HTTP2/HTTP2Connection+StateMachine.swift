internal import CNGHTTP2
import HTTPCore
import IOCore

/// The connection state machine:
///
///     open ──beginGracefulShutdown──► shutdownNotified ──PING ACK / nothing in flight──► draining
///      │                                   │                                              │
///      │ violation, idle, peer EOF         │ violation…                    streams done   │
///      ▼                                   ▼                                              ▼
///     closing (GOAWAY queued) ───── next action: .flushAndClose or .close ─────────► closed
///
/// Every call runs `process()`: input is scanned frame header by frame header (the flood
/// guard can cut the connection before nghttp2 decodes the offending frame), fed to nghttp2,
/// then `settle()` dispatches ready streams, delivers bodies and notifications, and lets
/// nghttp2 write frames until nothing changes.
extension HTTP2Connection {
    /// Whether handlers may still write frames.
    @inline(__always)
    var acceptsStreamOutput: Bool {
        switch state {
        case .open, .shutdownNotified, .draining: return true
        case .closing, .closed: return false
        }
    }

    /// Queues SETTINGS (RFC 9113 §6.5.2) and raises the connection window (§6.9.2).
    func submitPreface() {
        var iv: [nghttp2_settings_entry] = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: UInt32(clamping: settings.maxConcurrentStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(clamping: min(settings.initialWindowSize, Int(Int32.max)))),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue),
                value: UInt32(clamping: max(16384, min(settings.maxFrameSize, 16_777_215)))),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(clamping: settings.maxHeaderListSize)),
            // RFC 9218 §2.1: we do not use RFC 7540 priorities (no priority tree to attack).
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
        ]
        if settings.headerTableSize != 4096 {
            iv.append(
                nghttp2_settings_entry(
                    settings_id: Int32(NGHTTP2_SETTINGS_HEADER_TABLE_SIZE.rawValue),
                    value: UInt32(clamping: settings.headerTableSize)))
        }
        _ = iv.withUnsafeBufferPointer {
            nghttp2_submit_settings(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count)
        }
        if settings.connectionWindowSize > 65535 {
            _ = nghttp2_session_set_local_window_size(
                session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                Int32(clamping: min(settings.connectionWindowSize, Int(Int32.max))))
        }
    }

    /// One round: input, then everything it made possible.
    func process() {
        if acceptsStreamOutput && !input.isEmpty { feed() }
        settle()
    }

    /// Scans `input` and feeds nghttp2 up to the first frame that breaks a limit.
    private func feed() {
        let bytes = input.readable
        var offset = 0
        var cut = bytes.count
        var violation: HTTP2Violation? = nil
        scan: while true {
            switch scanner.next(bytes, &offset) {
            case .needMore:
                break scan
            case .frame(let h, let start):
                if let v = floodGuard.onFrame(h, now: now) {
                    violation = v
                    cut = start
                    break scan
                }
            case .padLength(let pad):
                if let v = floodGuard.onPadLength(pad, now: now) {
                    violation = v
                    cut = offset
                    break scan
                }
            case .badPreface:
                violation = .badPreface
                cut = 0
                break scan
            }
        }
        var rv = 0
        if cut > 0 {
            rv = nghttp2_session_mem_recv(session.raw, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), cut)
        }
        input.consume(bytes.count)
        if rv < 0 {
            onLibraryError(Int32(rv))
        } else if let v = pendingViolation ?? violation {
            fail(v)
        }
    }

    /// nghttp2 refused to go on (`mem_recv`/`send` returned a fatal error).
    private func onLibraryError(_ rv: Int32) {
        if let v = pendingViolation {
            fail(v)
            return
        }
        switch rv {
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue:
            fail(.badPreface)
        case NGHTTP2_ERR_FLOODED.rawValue, -905:  // -905: NGHTTP2_ERR_TOO_MANY_CONTINUATIONS (Debian backport)
            fail(.outboundQueueFlood)
        default:
            fail(.library(rv))
        }
    }

    /// Ends the connection because of `v`: GOAWAY with its code and the last processed stream
    /// (RFC 9113 §5.4.1), nothing more is read or dispatched.
    func fail(_ v: HTTP2Violation) {
        pendingViolation = nil
        guard acceptsStreamOutput else { return }
        lastViolation = v
        if v == .badPreface {
            // Not an HTTP/2 peer: no GOAWAY (RFC 9113 §3.4 allows omitting it).
            output.clear()
            state = .closing
            return
        }
        goAway(v.errorCode)
    }

    /// Queues a terminating GOAWAY (`nghttp2_session_terminate_session`: nghttp2 ignores all
    /// input from now on and stops writing after it) and moves to `.closing`.
    func goAway(_ code: HTTP2ErrorCode) {
        flushAll = true
        if nghttp2_session_terminate_session(session.raw, code.rawValue) != 0 {
            appendRawGoAway(code)
        }
        state = .closing
        sendFrames()
        if sentGoAway == nil { appendRawGoAway(code) }
    }

    /// A GOAWAY written by hand, for when nghttp2 cannot (RFC 9113 §6.8 layout).
    private func appendRawGoAway(_ code: HTTP2ErrorCode) {
        let last = UInt32(bitPattern: nghttp2_session_get_last_proc_stream_id(session.raw))
        let c = code.rawValue
        output.append([
            0, 0, 8, HTTP2FrameHeader.goAway, 0, 0, 0, 0, 0,
            UInt8(truncatingIfNeeded: last >> 24), UInt8(truncatingIfNeeded: last >> 16),
            UInt8(truncatingIfNeeded: last >> 8), UInt8(truncatingIfNeeded: last),
            UInt8(truncatingIfNeeded: c >> 24), UInt8(truncatingIfNeeded: c >> 16),
            UInt8(truncatingIfNeeded: c >> 8), UInt8(truncatingIfNeeded: c),
        ])
        sentGoAway = HTTP2GoAway(lastStreamID: Int32(bitPattern: last), errorCode: code)
    }

    /// Lets nghttp2 write queued frames into `output`.
    func sendFrames() {
        guard state != .closed else { return }
        let rv = nghttp2_session_send(session.raw)
        if rv != 0 {
            lastViolation = lastViolation ?? .library(rv)
            state = .closing
        }
        if let v = pendingViolation { fail(v) }
    }

    /// Runs everything the last input or handler call made possible, until nothing changes.
    func settle() {
        var rounds = 0
        while state != .closed {
            if acceptsStreamOutput && !readyQueue.isEmpty { dispatchReady() }
            if !serviceQueue.isEmpty { serviceStreams() }
            if state != .closing { sendFrames() }
            checkShutdown()
            rounds += 1
            let more = !serviceQueue.isEmpty || (acceptsStreamOutput && hasDispatchable)
            if !more || rounds >= 16 || outputFull { break }
        }
        if !serviceQueue.isEmpty && acceptsStreamOutput && !outputFull {
            // Bounded work per call; ask for another turn of the loop.
            delegate?.http2ConnectionNeedsService(self)
        }
    }

    /// Graceful-shutdown progress and nghttp2's own end of the session.
    private func checkShutdown() {
        if state == .shutdownNotified && live.isEmpty { sendFinalGoAway() }
        switch state {
        case .open, .draining:
            // nghttp2 wants nothing more: it sent a terminating GOAWAY itself (a protocol
            // error it detected), or a GOAWAY was exchanged and the last stream closed.
            if nghttp2_session_want_read(session.raw) == 0 && nghttp2_session_want_write(session.raw) == 0 {
                state = .closing
            }
        case .shutdownNotified, .closing, .closed:
            break
        }
    }

    /// Starts the graceful shutdown (also used when a handler sets `Connection: close`).
    func requestGracefulShutdown() {
        guard state == .open else { return }
        _ = nghttp2_submit_shutdown_notice(session.raw)
        let ping = HTTP2Connection.shutdownPing
        _ = nghttp2_submit_ping(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), ping.utf8Start)
        state = .shutdownNotified
        noteOutsideChange()
    }

    /// The PING sent with the shutdown notice came back: every stream the client opened
    /// before it saw the notice has arrived.
    func shutdownPingAcknowledged() {
        if state == .shutdownNotified { sendFinalGoAway() }
    }

    /// The final GOAWAY (RFC 9113 §6.8): NO_ERROR with the last stream we processed; nghttp2
    /// ignores newer streams from now on and its session ends when the last one closes.
    private func sendFinalGoAway() {
        _ = nghttp2_submit_goaway(
            session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session.raw),
            HTTP2ErrorCode.noError.rawValue, nil, 0)
        state = .draining
        sendFrames()
    }

    /// What the driver should do now, given the state.
    func nextAction() -> HTTP2Action {
        switch state {
        case .closed:
            return .close
        case .closing:
            teardown()
            return output.isEmpty ? .close : .flushAndClose
        case .open, .shutdownNotified, .draining:
            if output.readableBytes >= limits.maxPendingOutput { return .wait }
            return output.isEmpty ? .readMore : .flush
        }
    }

    /// Closes the books: readers fail, streams no handler holds are recycled. nghttp2 is not
    /// called again (its session is freed with the connection).
    private func teardown() {
        state = .closed
        var i = live.count - 1
        while i >= 0 {
            if i < live.count {
                let s = live[i]
                s.closed = true
                s.failReader(.connectionClosed)
                if s.phase == .handling {
                    s.responseFlow.abortNoticeDue = true
                    s.serviceFlow()
                }
                if s.phase != .handling { release(s) }
            }
            i -= 1
        }
        readyQueue.removeAll(keepingCapacity: true)
        serviceQueue.removeAll(keepingCapacity: true)
    }
}
