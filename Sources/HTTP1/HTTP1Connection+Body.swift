import HTTPCore
import IOCore

/// Request bodies: delivery to a handler's reader, discarding, and 100-continue.
extension HTTP1Connection: RequestBodySource {
    /// Starts pushing the body to `reader`. Sends `100 Continue` first when the client asked
    /// for it and no response has started (RFC 9110 §10.1.1: a server that will read the body
    /// sends 100 to a client that waits for it). Fails at once with `.abandoned` when the body
    /// was already given up (the response head went out without reading).
    package func startReading(_ reader: any RequestBodyReader) {
        guard state == .handling, case .unclaimed = consumer else {
            reader.requestBodyFailed(.abandoned)
            return
        }
        if expectContinuePending && responseMode == .notStarted {
            HTTP1Encoder.writeContinue(into: output)
            expectContinuePending = false
        }
        consumer = .reading(reader, paused: false)
        epoch &+= 1
        notifyIfOutside()
    }

    /// Stops delivery; the connection stops reading once `maxBufferedInput` is buffered.
    package func pauseReading() {
        if case .reading(let r, false) = consumer { consumer = .reading(r, paused: true) }
    }

    /// Resumes delivery.
    package func resumeReading() {
        if case .reading(let r, true) = consumer {
            consumer = .reading(r, paused: false)
            epoch &+= 1
            notifyIfOutside()
        }
    }

    /// Chunked trailer fields, complete once the reader got `requestBodyFinished`.
    package var trailers: HTTPFields { trailerFields }

    /// The next piece of body in `input` under the current framing (RFC 9112 §6.3).
    @inline(__always)
    func nextBodyStep() -> BodyStep {
        switch bodyFraming {
        case .none:
            return .done
        case .length:
            if bodyRemaining == 0 { return .done }
            let n = min(Int64(input.readableBytes), bodyRemaining)
            if n == 0 { return .needMore }
            bodyRemaining -= n
            return .data(Int(n))
        case .chunked:
            var d = decoder
            let r = d.next(input, trailers: &trailerFields, limits: limits)
            decoder = d
            return r
        }
    }

    /// Delivers or discards buffered body bytes while the handler runs.
    func pumpBody() {
        while !bodyBroken {
            switch consumer {
            case .unclaimed, .readerDone:
                return
            case .discarding:
                if keepAlive { discardBuffered() }
                return
            case .reading(let reader, let paused):
                if paused { return }
                if bodyDone {
                    consumer = .readerDone
                    reader.requestBodyFinished()
                    return
                }
                switch nextBodyStep() {
                case .data(let n):
                    // Consume first, then deliver: the bytes stay valid (nothing appends to
                    // `input` during the call) and a reader that re-enters sees a consistent
                    // buffer.
                    let bytes = UnsafeRawBufferPointer(start: input.base + input.readerIndex, count: n)
                    input.consume(n)
                    request.bodyBytesRead += Int64(n)
                    epoch &+= 1
                    if n > 0 { reader.requestBody(bytes) }
                    if state != .handling { return }
                case .needMore:
                    return
                case .done:
                    bodyDone = true
                case .failure(let e):
                    onBodyFailure(e)
                    return
                }
            }
        }
    }

    /// A chunked body is malformed (RFC 9112 §7.1): the framing is lost, so the connection
    /// must close. If no response started, the client gets 400 (the handler's later calls are
    /// ignored); the reader, if any, fails.
    func onBodyFailure(_ e: HTTP1Error) {
        bodyBroken = true
        keepAlive = false
        lastError = e
        let reader: (any RequestBodyReader)?
        if case .reading(let r, _) = consumer { reader = r } else { reader = nil }
        consumer = .readerDone
        if state == .handling && responseMode == .notStarted { reject(e) }
        reader?.requestBodyFailed(.invalidFraming)
    }

    /// Called when a response head goes out while nobody has claimed the body: the handler
    /// answered without reading it. Decides now, as Go does when it writes the header, whether
    /// the connection can survive (RFC 9112 §9.3; RFC 9110 §10.1.1):
    /// - what is already buffered is discarded at once (so a small body that arrived with the
    ///   head never costs the connection);
    /// - a client still waiting for `100 Continue` may never send the body: close;
    /// - a Content-Length remainder above `maxDiscardBytes`: close (`Connection: close`);
    /// - otherwise keep alive and discard the rest as it arrives, up to `maxDiscardBytes`
    ///   (for chunked bodies the limit is enforced as it arrives; exceeding it closes).
    func abandonUnclaimedBody() {
        guard !bodyDone, !bodyBroken, case .unclaimed = consumer else { return }
        consumer = .discarding
        discardBudget = limits.maxDiscardBytes
        discardBuffered()
        if bodyDone || !keepAlive { return }
        if expectContinuePending {
            keepAlive = false
            return
        }
        if case .length = bodyFraming, bodyRemaining > discardBudget { keepAlive = false }
    }

    /// Discards buffered body bytes within the budget; exceeding it or bad framing ends
    /// keep-alive. Chunk framing counts against the budget too, so a body of one-byte chunks
    /// with 4 KiB extensions cannot keep the connection busy for long.
    func discardBuffered() {
        while !bodyDone && !bodyBroken {
            let before = input.readableBytes
            let step = nextBodyStep()
            if case .data(let n) = step { input.consume(n) }
            let used = before - input.readableBytes
            if used > 0 { epoch &+= 1 }
            discardBudget -= Int64(used)
            switch step {
            case .data:
                if discardBudget < 0 {
                    keepAlive = false
                    return
                }
            case .needMore:
                if discardBudget < 0 { keepAlive = false }
                return
            case .done:
                bodyDone = true
            case .failure(let e):
                lastError = e
                bodyBroken = true
                keepAlive = false
                return
            }
        }
    }
}
