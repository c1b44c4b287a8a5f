import HTTPCore
import IOCore

/// Request bodies: DATA frames delivered to the handler's reader, with the stream's receive
/// window returned to the client only as the reader takes the bytes (RFC 9113 §5.2.2: flow
/// control is how a receiver limits what it buffers). nghttp2 runs with
/// `no_auto_window_update`, so a paused or not-yet-reading handler makes the client stop at
/// its window — nothing is buffered beyond it.
extension HTTP2Stream: RequestBodySource {
    /// Starts pushing the body to `reader`; sends `100 Continue` first when the client asked
    /// for it (RFC 9110 §10.1.1, RFC 9113 §8.1). Fails at once with `.abandoned` when the
    /// body was already given up.
    package func startReading(_ reader: any RequestBodyReader) {
        guard phase == .handling, case .unclaimed = consumer else {
            reader.requestBodyFailed(.abandoned)
            return
        }
        if expectContinue && mode == .notStarted && canWrite {
            expectContinue = false
            connection.submitContinue(self)
        }
        consumer = .reading(reader, paused: false)
        connection.epoch &+= 1
        needsBodyPump = true
        connection.enqueueService(self)
        connection.noteOutsideChange()
    }

    /// Stops delivery; the client stops once the stream window is used up.
    package func pauseReading() {
        if case .reading(let r, false) = consumer { consumer = .reading(r, paused: true) }
    }

    /// Resumes delivery.
    package func resumeReading() {
        if case .reading(let r, true) = consumer {
            consumer = .reading(r, paused: false)
            connection.epoch &+= 1
            needsBodyPump = true
            connection.enqueueService(self)
            connection.noteOutsideChange()
        }
    }

    /// The request's trailer fields (RFC 9113 §8.1: a HEADERS frame with END_STREAM after
    /// the DATA frames), complete once the reader got `requestBodyFinished`.
    package var trailers: HTTPFields { requestTrailers }

    /// True while the handler reads, unpaused, and the body has not ended: the read-body
    /// timer runs.
    var awaitsBody: Bool {
        guard phase == .handling, !remoteEnded, !closed, case .reading(_, false) = consumer else { return false }
        return true
    }

    /// DATA payload from nghttp2 (`on_data_chunk_recv`). Delivered at once to a reading,
    /// unpaused handler with nothing buffered before it; buffered otherwise (the window bounds
    /// it); acknowledged at once when nobody will read it.
    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        connection.epoch &+= 1
        switch consumer {
        case .discarding, .readerDone:
            connection.consume(self, bytes.count)
        case .reading(let reader, let paused):
            if !paused && bodyIn.isEmpty && phase == .handling {
                request.bodyBytesRead += Int64(bytes.count)
                reader.requestBody(bytes)
                connection.consume(self, bytes.count)
            } else {
                bodyIn.append(bytes)
            }
        case .unclaimed:
            if phase == .responded || closed {
                connection.consume(self, bytes.count)
            } else {
                bodyIn.append(bytes)
            }
        }
    }

    /// END_STREAM arrived (on HEADERS or DATA).
    func receiveEnd() {
        remoteEnded = true
        if case .reading = consumer {
            needsBodyPump = true
            connection.enqueueService(self)
        }
    }

    /// Delivers buffered body and the end (or failure) to the reader. Runs from the
    /// connection's own processing, never from inside a handler's call.
    func pumpBody() {
        needsBodyPump = false
        while case .reading(let reader, let paused) = consumer, !paused {
            let n = bodyIn.readableBytes
            if n > 0 {
                // Consume first, then deliver: the bytes stay valid (nothing appends to
                // `bodyIn` during the call) and a reader that re-enters sees a consistent buffer.
                let bytes = UnsafeRawBufferPointer(start: bodyIn.base + bodyIn.readerIndex, count: n)
                bodyIn.consume(n)
                request.bodyBytesRead += Int64(n)
                reader.requestBody(bytes)
                connection.consume(self, n)
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

    /// The body will not be read: return what is buffered to the window and drop the rest as
    /// it arrives.
    func discardBody() {
        consumer = .discarding
        let n = bodyIn.readableBytes
        bodyIn.clear()
        if n > 0 { connection.consume(self, n) }
    }

    /// The stream or the connection ended, or the response finished, while a reader still
    /// expected bytes.
    func failReader(_ error: RequestBodyError) {
        guard case .reading(let reader, _) = consumer else { return }
        consumer = .readerDone
        reader.requestBodyFailed(error)
    }
}
