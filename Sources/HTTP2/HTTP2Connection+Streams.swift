internal import CNGHTTP2
import HTTPCore
import IOCore

/// Streams: opening from the pool, dispatch to handlers (at most `maxConcurrentStreams` in
/// flight, reset streams included), body and writability service, and recycling.
extension HTTP2Connection {
    /// A request HEADERS frame opened stream `id`. nghttp2 has already refused streams beyond
    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2) and ignores new ones after our GOAWAY.
    func openStream(id: Int32) {
        let s: HTTP2Stream
        if let p = pool.popLast() {
            s = p
        } else {
            s = HTTP2Stream(connection: self)
            streamsAllocated += 1
        }
        s.open(id: id)
        s.liveIndex = live.count
        live.append(s)
        nghttp2_session_set_stream_user_data(session.raw, id, Unmanaged.passUnretained(s).toOpaque())
        epoch &+= 1
    }

    /// END_HEADERS of a request: queue it for a handler (or answer 431). Queued streams are
    /// open streams, so nghttp2's SETTINGS_MAX_CONCURRENT_STREAMS bounds the queue too.
    func headReady(_ s: HTTP2Stream) {
        if s.head.tooLarge {
            reject(s, status: 431)
            return
        }
        s.phase = .queued
        queuedStreams += 1
        readyQueue.append(s)
    }

    /// Whether a queued stream can get a handler now.
    var hasDispatchable: Bool { queuedStreams > 0 && handlersInFlight < settings.maxConcurrentStreams }

    /// Hands queued streams to the responder while handler slots are free. A client that
    /// resets streams whose handlers are still running cannot get more handlers than
    /// SETTINGS_MAX_CONCURRENT_STREAMS this way (the CVE-2023-44487 mitigation Go uses).
    func dispatchReady() {
        var kept = 0
        var i = 0
        let end = readyQueue.count
        while i < end {
            let s = readyQueue[i]
            i += 1
            // Stale entries (reset while queued, or recycled) are dropped here.
            guard s.phase == .queued else { continue }
            if handlersInFlight >= settings.maxConcurrentStreams || !acceptsStreamOutput {
                readyQueue[kept] = s
                kept += 1
                continue
            }
            queuedStreams -= 1
            dispatch(s)
        }
        readyQueue.removeSubrange(kept..<end)
    }

    private func dispatch(_ s: HTTP2Stream) {
        s.phase = .handling
        s.dispatched = true
        s.countsAsHandler = true
        handlersInFlight += 1
        s.request.startNanos = Clock.monotonicNanos()
        if s.head.isAsterisk && s.request.method == .OPTIONS {
            // RFC 9110 §9.3.7: OPTIONS * asks about the server itself; Go answers it without
            // routing (200, content-length 0, no server field) and Caddy does not log it.
            s.logExchange = false
            s.submitResponse(
                status: 200, fields: s.response.fields, contentLength: 0, withBody: false, addServer: false)
            s.mode = .finished
            handlerFinished(s)
            return
        }
        let result = responder.respond(s.request, s.response)
        switch result {
        case .pending:
            break
        case .done, .next:
            if s.phase == .handling && !s.response.headSent { s.response.sendUnanswered() }
        }
    }

    /// Answers a stream without a handler (a Go-level rejection: no `server`, not logged).
    private func reject(_ s: HTTP2Stream, status: Int) {
        s.logExchange = false
        s.phase = .responded
        s.mode = .finished
        s.response.status = status
        s.response.fields.append(.contentType, "text/plain; charset=utf-8")
        s.bodyOut.appendDecimal(status)
        s.bodyOut.append(byte: 0x20)
        s.bodyOut.append(HTTPStatus.reason(status))
        s.bodyComplete = true
        if !s.bodyPipe.remoteEnded { s.discardBody() }
        s.submitResponse(
            status: status, fields: s.response.fields, contentLength: Int64(s.bodyOut.readableBytes), withBody: true,
            addServer: false)
    }

    /// The handler finished its response (or aborted it): its slot frees up; an unread body
    /// is given up (the reader gets `.abandoned`, like HTTP/1).
    func handlerFinished(_ s: HTTP2Stream) {
        if s.countsAsHandler {
            s.countsAsHandler = false
            handlersInFlight -= 1
        }
        s.phase = .responded
        s.abandonBody()
        if s.closed || state == .closed {
            release(s)
        } else if s.localEnded && !s.bodyPipe.remoteEnded {
            drainOrReset(s)
        }
        noteOutsideChange()
    }

    /// The most request body still accepted (and dropped) after a response that went out
    /// before the body ended, before the stream is reset (Go's HTTP/1 discards up to 256 KiB
    /// too). RFC 9113 §8.1 lets a server reset such a stream with NO_ERROR at once, but clients
    /// still uploading then report an error instead of the answer (curl 7.88 exits 92 on a
    /// 401 or 413 to a POST); a small body in flight is simply let through.
    static let drainAfterResponse = 256 * 1024

    /// The response ended while the request body is still coming: keep reading and dropping
    /// it within `drainAfterResponse`, then reset with NO_ERROR (`bodyDrained`).
    func drainOrReset(_ s: HTTP2Stream) {
        guard s.drainBudget < 0 else { return }
        s.drainBudget = HTTP2Connection.drainAfterResponse
        s.discardBody()
    }

    /// `n` more body bytes arrived on a stream that is draining (see `drainOrReset`).
    func bodyDrained(_ s: HTTP2Stream, _ n: Int) {
        s.drainBudget -= n
        if s.drainBudget < 0 {
            s.drainBudget = 0
            if !s.closed { resetStream(s, .noError) }
        }
    }

    /// The unread body of `s` is given up (its response head went out without reading).
    func discardBody(_ s: HTTP2Stream) { s.discardBody() }

    /// We sent END_STREAM on `s`. RFC 9113 §8.1: a server that answered before the request
    /// ended MAY ask the client to stop with RST_STREAM NO_ERROR — after a little draining.
    func localEnded(_ s: HTTP2Stream) {
        s.localEnded = true
        if s.phase == .responded && !s.bodyPipe.remoteEnded { drainOrReset(s) }
    }

    /// nghttp2 closed `s` (both sides ended, or a reset either way).
    func streamClosed(_ s: HTTP2Stream, code: HTTP2ErrorCode) {
        s.closed = true
        switch s.phase {
        case .headers, .queued:
            if s.phase == .queued { queuedStreams -= 1 }
            s.phase = .idle
            s.logExchange = false
            release(s)
            return
        case .idle:
            return
        case .handling, .responded:
            break
        }
        s.bodyStreamClosed()
        s.noteResponseClosed()
        if s.phase == .responded { release(s) }
    }

    /// We sent RST_STREAM with `code`: if the client caused it, it counts as a reset.
    func sentReset(code: HTTP2ErrorCode) {
        guard code.blamesPeer, pendingViolation == nil else { return }
        if let v = floodGuard.onReset(now: now) { pendingViolation = v }
    }

    /// Queues `s` for body delivery or a writability check.
    @inline(__always)
    func enqueueService(_ s: HTTP2Stream) {
        if !s.inServiceQueue {
            s.inServiceQueue = true
            serviceQueue.append(s)
        }
    }

    /// Delivers bodies and writability notifications for the streams queued so far.
    func serviceStreams() {
        let end = serviceQueue.count
        var i = 0
        while i < end {
            let s = serviceQueue[i]
            i += 1
            guard s.inServiceQueue else { continue }
            s.inServiceQueue = false
            if s.bodyPipe.needsPump { s.pumpBody() }
            if s.responseFlow.blocked || s.responseFlow.abortNoticeDue { s.serviceFlow() }
        }
        serviceQueue.removeSubrange(0..<end)
    }

    /// Recycles `s`: logs a dispatched exchange, returns the object to the pool.
    func release(_ s: HTTP2Stream) {
        let i = s.liveIndex
        guard i >= 0 else { return }
        if s.dispatched && s.logExchange {
            streamsServed += 1
            delegate?.http2Connection(
                self, finished: s.request, response: s.response, bytesRead: s.request.bodyBytesRead)
        }
        s.returnBufferedBodyCredit()
        let last = live.count - 1
        if i != last {
            live[i] = live[last]
            live[i].liveIndex = i
        }
        live.removeLast()
        s.liveIndex = -1
        s.recycle()
        if pool.count < limits.streamPoolSize { pool.append(s) }
        epoch &+= 1
    }
}
