import HTTPCore
import IOCore

/// Request bodies: DATA delivered to the handler's reader, with the stream and connection
/// receive windows (RFC 9000 §4.1) credited back only as the reader takes the bytes, so a
/// paused or not-yet-reading handler makes the client stop at its window.
extension HTTP3Stream: RequestBodySource {
    /// Starts pushing the body to `reader` (HTTP/3 has no `100 Continue` handshake to do:
    /// the client sends the body at once, bounded by our windows). Fails with `.abandoned`
    /// when the body was already given up.
    package func startReading(_ reader: any RequestBodyReader) {
        guard phase == .handling, case .unclaimed = consumer else {
            reader.requestBodyFailed(.abandoned)
            return
        }
        consumer = .reading(reader, paused: false)
        connection.lastBodyActivity = Clock.monotonicNanos()
        needsBodyPump = true
        connection.enqueueService(self)
        connection.noteOutsideChange()
    }

    package func pauseReading() {
        if case .reading(let r, false) = consumer { consumer = .reading(r, paused: true) }
    }

    package func resumeReading() {
        if case .reading(let r, true) = consumer {
            consumer = .reading(r, paused: false)
            connection.lastBodyActivity = Clock.monotonicNanos()
            needsBodyPump = true
            connection.enqueueService(self)
            connection.noteOutsideChange()
        }
    }

    /// The request's trailer fields (RFC 9114 §4.1: a HEADERS frame after the DATA frames),
    /// complete once the reader got `requestBodyFinished`.
    package var trailers: HTTPFields { requestTrailers }

    /// True while the handler reads, unpaused, and the body has not ended.
    var awaitsBody: Bool {
        guard phase == .handling, !remoteEnded, !closed, case .reading(_, false) = consumer else { return false }
        return true
    }

    /// DATA payload from nghttp3: delivered at once to a reading, unpaused handler with
    /// nothing buffered before it; buffered otherwise; credited at once when nobody reads.
    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        connection.lastBodyActivity = Clock.monotonicNanos()
        switch consumer {
        case .discarding, .readerDone:
            connection.consume(id, bytes.count)
        case .reading(let reader, let paused):
            if !paused && bodyIn.isEmpty && phase == .handling {
                request.bodyBytesRead += Int64(bytes.count)
                reader.requestBody(bytes)
                connection.consume(id, bytes.count)
            } else {
                bodyIn.append(bytes)
            }
        case .unclaimed:
            if phase == .responded || closed {
                connection.consume(id, bytes.count)
            } else {
                bodyIn.append(bytes)
            }
        }
    }

    /// The request stream ended (FIN).
    func receiveEnd() {
        remoteEnded = true
        if case .reading = consumer {
            needsBodyPump = true
            connection.enqueueService(self)
        }
    }

    /// Delivers buffered body and its end (or failure) to the reader, from the connection's
    /// own processing, never from inside a handler's call.
    func pumpBody() {
        needsBodyPump = false
        while case .reading(let reader, let paused) = consumer, !paused {
            let n = bodyIn.readableBytes
            if n > 0 {
                let bytes = UnsafeRawBufferPointer(start: bodyIn.base + bodyIn.readerIndex, count: n)
                bodyIn.consume(n)
                request.bodyBytesRead += Int64(n)
                reader.requestBody(bytes)
                connection.consume(id, n)
                continue
            }
            if remoteEnded {
                consumer = .readerDone
                if trailersTooLarge {
                    reader.requestBodyFailed(.invalidFraming)
                } else {
                    reader.requestBodyFinished()
                }
            } else if closed {
                consumer = .readerDone
                reader.requestBodyFailed(.connectionClosed)
            }
            return
        }
    }

    /// The body will not be read: credit what is buffered and drop the rest as it arrives.
    func discardBody() {
        consumer = .discarding
        let n = bodyIn.readableBytes
        bodyIn.clear()
        if n > 0 { connection.consume(id, n) }
    }

    func failReader(_ error: RequestBodyError) {
        guard case .reading(let reader, _) = consumer else { return }
        consumer = .readerDone
        reader.requestBodyFailed(error)
    }
}

/// Flow control for streaming handlers (`HTTPCore/ResponseFlow.swift`), per stream: writable
/// while the body chain (unsent plus unacknowledged bytes) is under
/// `QUICLimits.streamWriteHighWater`; `responseWritable()` once ACKs brought it below again.
extension HTTP3Stream: ResponseFlowControl {
    package var isResponseWritable: Bool {
        guard phase == .handling, mode == .streaming, canWrite else { return true }
        if body.count < connection.endpoint.configuration.limits.streamWriteHighWater { return true }
        flowBlocked = true
        return false
    }

    package func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {
        guard response === self.response else { return }
        flowObserver = observer
        if observer == nil { flowBlocked = false }
    }

    /// The head went out but the body cannot be completed: the stream is reset with
    /// H3_INTERNAL_ERROR so the client sees the message as incomplete (RFC 9114 §4.1.2).
    package func abortStreamedResponse(_ response: HTTPResponse) {
        guard owns(response), mode == .streaming || mode == .noBody else { return }
        bodyAborted = true
        flowBlocked = false
        if canWrite { connection.resetStream(self, 0x0102) }
        connection.noteOutsideChange()
    }

    /// HTTP/3 has no `101 Switching Protocols` (RFC 9114 §4.5): never handed over.
    package func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }

    func serviceFlow() {
        if abortNoticeDue {
            abortNoticeDue = false
            flowBlocked = false
            if phase == .handling { flowObserver?.responseAborted() }
            return
        }
        guard flowBlocked else { return }
        if phase != .handling || mode != .streaming {
            flowBlocked = false
            return
        }
        if body.count < connection.endpoint.configuration.limits.streamWriteHighWater {
            flowBlocked = false
            flowObserver?.responseWritable()
        }
    }
}
