internal import CNGHTTP3
internal import CNGTCP2
import HTTPCore
import IOCore

/// Request streams: opening from the pool, dispatch to handlers (at most
/// `maxConcurrentStreams` in flight, reset streams included), body and writability service,
/// recycling — the same bookkeeping as HTTP/2.
extension QUICConnection {
    /// A request's field section began on stream `id`.
    func openStream(id: Int64) -> HTTP3Stream {
        let s: HTTP3Stream
        if let p = pool.popLast() {
            s = p
        } else {
            s = HTTP3Stream(connection: self)
            streamsAllocated += 1
        }
        s.open(id: id)
        s.liveIndex = live.count
        live.append(s)
        return s
    }

    /// The field section ended: queue the request for a handler (or answer 431).
    func headReady(_ s: HTTP3Stream) {
        if s.head.tooLarge {
            reject(s, status: 431)
            return
        }
        s.phase = .queued
        queuedStreams += 1
        readyQueue.append(s)
        endpoint.markDirty(self)
    }

    var hasDispatchable: Bool {
        queuedStreams > 0 && handlersInFlight < endpoint.configuration.settings.maxConcurrentStreams
            && ngtcp2_conn_get_handshake_completed(conn) != 0
    }

    func dispatchReady() {
        var kept = 0
        var i = 0
        let end = readyQueue.count
        let cap = endpoint.configuration.settings.maxConcurrentStreams
        // Before the handshake completes, requests can only have come as 0-RTT (or 1-RTT
        // packets racing the client's Finished): unsafe methods wait (QUICEarlyData.swift).
        let early = ngtcp2_conn_get_handshake_completed(conn) == 0
        while i < end {
            let s = readyQueue[i]
            i += 1
            guard s.phase == .queued else { continue }
            if handlersInFlight >= cap || state != .open
                || (early && (holdAllEarly || !HTTP3Stream.isSafe(s.request.method)))
            {
                readyQueue[kept] = s
                kept += 1
                continue
            }
            queuedStreams -= 1
            if early { s.request.fields.append(name: "Early-Data", value: "1") }
            dispatch(s)
        }
        readyQueue.removeSubrange(kept..<end)
    }

    private func dispatch(_ s: HTTP3Stream) {
        s.phase = .handling
        s.dispatched = true
        s.countsAsHandler = true
        handlersInFlight += 1
        s.request.startNanos = Clock.monotonicNanos()
        let result = responder.respond(s.request, s.response)
        switch result {
        case .pending:
            break
        case .done, .next:
            if s.phase == .handling && !s.response.headSent { s.response.sendUnanswered() }
        }
    }

    /// Answers a stream without a handler (not logged, no `server`).
    private func reject(_ s: HTTP3Stream, status: Int) {
        s.logExchange = false
        s.phase = .responded
        s.mode = .finished
        s.response.status = status
        s.response.fields.append(.contentType, "text/plain; charset=utf-8")
        let text = ByteBuffer(capacity: 64)
        text.appendDecimal(status)
        text.append(byte: 0x20)
        text.append(HTTPStatus.reason(status))
        s.body.append(text.readable, pool: chunkPool)
        s.bodyComplete = true
        if !s.bodyPipe.remoteEnded { stopReading(s) }
        s.submitResponse(
            status: status, fields: s.response.fields, contentLength: Int64(s.body.count), withBody: true, addServer: false)
    }

    /// The handler finished its response (or aborted it).
    func handlerFinished(_ s: HTTP3Stream) {
        if s.countsAsHandler {
            s.countsAsHandler = false
            handlersInFlight -= 1
        }
        s.phase = .responded
        s.abandonBody()
        if s.closed || state != .open {
            release(s)
        }
        if state == .closed && handlersInFlight == 0 {
            endpoint.handlersDone(self)
            return
        }
        noteOutsideChange()
    }

    /// The client should stop sending the request body (RFC 9114 §4.1.2: STOP_SENDING with
    /// H3_NO_ERROR after a complete response); what arrives meanwhile is credited and dropped.
    func stopReading(_ s: HTTP3Stream) {
        s.discardBody()
        if state == .open && !s.closed {
            _ = ngtcp2_conn_shutdown_stream_read(conn, s.id, UInt64(NGHTTP3_H3_NO_ERROR))
        }
    }

    /// Resets `s` both ways with `code` (RFC 9000 §3.5).
    func resetStream(_ s: HTTP3Stream, _ code: UInt64) {
        guard state == .open, !s.closed else { return }
        _ = ngtcp2_conn_shutdown_stream(conn, s.id, code)
        noteOutsideChange()
    }

    /// Queues the response HEADERS built in `s.nva`, with the data reader when a body follows.
    func submitResponse(_ s: HTTP3Stream, withBody: Bool) {
        guard let h3 else { return }
        let rv: Int32 = s.nva.withUnsafeBufferPointer { nv in
            if withBody {
                var dr = nghttp3_data_reader(read_data: h3ReadData)
                return nghttp3_conn_submit_response(h3, s.id, nv.baseAddress, nv.count, &dr)
            }
            return nghttp3_conn_submit_response(h3, s.id, nv.baseAddress, nv.count, nil)
        }
        if rv != 0 { resetStream(s, UInt64(NGHTTP3_H3_INTERNAL_ERROR)) }
        noteOutsideChange()
    }

    /// Queues the interim (1xx) HEADERS built in `s.nva` (`nghttp3_conn_submit_info`); a
    /// refusal resets the stream like a refused final head.
    func submitInfo(_ s: HTTP3Stream) {
        guard let h3, state == .open, !s.closed else { return }
        let rv = s.nva.withUnsafeBufferPointer { nghttp3_conn_submit_info(h3, s.id, $0.baseAddress, $0.count) }
        if rv != 0 { resetStream(s, UInt64(NGHTTP3_H3_INTERNAL_ERROR)) }
        noteOutsideChange()
    }

    /// Submits the trailer section built in `s.nva`; false when nghttp3 refused it (the
    /// stream then ends after the body as if there were none).
    func submitTrailers(_ s: HTTP3Stream) -> Bool {
        guard let h3 else { return false }
        let rv = s.nva.withUnsafeBufferPointer { nghttp3_conn_submit_trailers(h3, s.id, $0.baseAddress, $0.count) }
        return rv == 0
    }

    func resumeStream(_ s: HTTP3Stream) {
        if let h3, state == .open, !s.closed { _ = nghttp3_conn_resume_stream(h3, s.id) }
    }

    /// nghttp3 closed `s`.
    func streamClosed(_ s: HTTP3Stream, code: UInt64) {
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

    @inline(__always)
    func enqueueService(_ s: HTTP3Stream) {
        if !s.inServiceQueue {
            s.inServiceQueue = true
            serviceQueue.append(s)
        }
    }

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
            if s.fileFailed {
                s.fileFailed = false
                resetStream(s, UInt64(NGHTTP3_H3_INTERNAL_ERROR))
            }
        }
        serviceQueue.removeSubrange(0..<end)
    }

    /// Asks the endpoint for a turn (outside calls: an asynchronous handler wrote).
    @inline(__always)
    func noteOutsideChange() {
        if state == .open { endpoint.markDirty(self) }
    }

    /// Recycles `s`: logs a dispatched exchange, returns the object to the pool.
    func release(_ s: HTTP3Stream) {
        let i = s.liveIndex
        guard i >= 0 else { return }
        if s.dispatched && s.logExchange {
            streamsServed += 1
            responder.finished(s.request, s.response, bytesRead: s.request.bodyBytesRead)
        }
        s.returnBufferedBodyCredit()
        if let h3, s.id >= 0, !s.closed { nghttp3_conn_set_stream_user_data(h3, s.id, nil) }
        let last = live.count - 1
        if i != last {
            live[i] = live[last]
            live[i].liveIndex = i
        }
        live.removeLast()
        s.liveIndex = -1
        s.recycle()
        if pool.count < endpoint.configuration.limits.streamPoolSize { pool.append(s) }
    }

    /// The connection is ending: readers fail, handlers holding a response are told
    /// (`responseAborted`), streams nobody holds are recycled.
    func teardownStreams() {
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
        queuedStreams = 0
    }
}
