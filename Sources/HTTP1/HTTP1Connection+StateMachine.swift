import HTTPCore
import IOCore

/// The exchange state machine:
///
///     head ──(head complete)──► handling ──(response finished)──┬──► head      keep-alive, body consumed
///      │                          │                             ├──► draining ──(rest of body discarded)──► head
///      │ bad head: reject         │ bad body before any         └──► closing ──► closed
///      ▼                          ▼ response: 400
///     closing ──► closed         closing ──► closed
///
/// `head` parses only when the previous response is finished, so pipelined requests are
/// answered in order (RFC 9112 §9.3.2).
extension HTTP1Connection {
    /// Runs the state machine until it needs input, a handler, or the driver.
    func process() {
        while true {
            switch state {
            case .head:
                if needsReset { resetExchange() }
                // Back-pressure: a client that pipelines without reading stops being parsed.
                if output.readableBytes >= limits.maxPendingOutput { return }
                // Parse on a local copy: two instantaneous accesses instead of one spanning the
                // call, which lets the optimizer drop the dynamic exclusivity checks.
                var p = parser
                let r = p.parse(input, into: request, limits: limits, allowPreface: requestsServed == 0)
                parser = p
                switch r {
                case .needMore:
                    return
                case .http2Preface:
                    state = .handedOff
                    return
                case .failure(let e):
                    reject(e)
                    return
                case .complete:
                    onHeadComplete()
                }
            case .handling:
                pumpBody()
                if state == .handling { return }
            case .draining:
                if !onDrain() { return }
            case .closing, .closed, .handedOff:
                return
            }
        }
    }

    /// A head was parsed: set up body framing and call the responder.
    func onHeadComplete() {
        request.startNanos = Clock.monotonicNanos()
        keepAlive = parser.keepAlive
        clientClosing = !parser.keepAlive
        isHEAD = request.method == .HEAD
        bodyFraming = parser.framing
        switch bodyFraming {
        case .none:
            bodyDone = true
        case .length(let n):
            bodyDone = false
            bodyRemaining = n
        case .chunked:
            bodyDone = false
        }
        // RFC 9110 §10.1.1: 100-continue only means something with a body, and only from an
        // HTTP/1.1 client (Go ignores it on 1.0 and for an empty body too).
        expectContinuePending = parser.expectContinue && request.version == .http1_1 && !bodyDone
        consumer = .unclaimed
        request.bodySource = bodyDone ? nil : self
        responseMode = .notStarted
        state = .handling
        epoch &+= 1

        switch parser.targetForm {
        case .asterisk:
            // RFC 9110 §9.3.7: OPTIONS * asks about the server itself. Go answers it without
            // routing; so do we, and like Caddy we don't log it.
            logExchange = false
            abandonUnclaimedBody()
            HTTP1Encoder.writeOptionsAsterisk(into: output, date: dateCache.current(), connection: connectionField)
            responseMode = .finished
            completeResponse()
            return
        case .authority:
            // CONNECT: Berth does not tunnel. A 2xx would make the client start tunnelling on
            // this connection (RFC 9110 §9.3.6), so the connection ends after the answer.
            keepAlive = false
        case .origin, .absolute:
            break
        }

        let result = responder.respond(request, response)
        switch result {
        case .pending:
            handlerHoldsResponse = !response.finished
        case .done, .next:
            if state == .handling && responseMode == .notStarted && !response.headSent {
                response.sendUnanswered()
            }
            handlerHoldsResponse = !response.finished
        }
    }

    /// The response is complete on the wire: log, give back the body, pick the next state.
    func completeResponse() {
        if logExchange {
            delegate?.http1Connection(self, finished: request, response: response, bytesRead: request.bodyBytesRead)
        }
        requestsServed += 1
        if !bodyDone && !bodyBroken {
            // The exchange is over: a body nobody finished reading is discarded (Go closes the
            // handler's body when it returns and discards up to 256 KiB).
            if case .reading(let reader, _) = consumer {
                consumer = .discarding
                if discardBudget == 0 { discardBudget = limits.maxDiscardBytes }
                if case .length = bodyFraming, bodyRemaining > discardBudget { keepAlive = false }
                reader.requestBodyFailed(.abandoned)
            } else if case .unclaimed = consumer {
                abandonUnclaimedBody()
            }
            // RFC 9110 §10.1.1: without a 100, the client may never send the body; don't wait.
            if expectContinuePending { keepAlive = false }
        }
        if bodyBroken { keepAlive = false }
        if !keepAlive {
            state = .closing
        } else if bodyDone {
            state = .head
            needsReset = true
        } else {
            state = .draining
        }
        notifyIfOutside()
    }

    /// Discards body bytes after the response. Returns true when the next head may be parsed.
    func onDrain() -> Bool {
        discardBuffered()
        if bodyDone && !bodyBroken && keepAlive {
            state = .head
            needsReset = true
            return true
        }
        if !keepAlive || bodyBroken {
            state = .closing
        }
        return false
    }

    /// Forgets the finished exchange, keeping all storage.
    func resetExchange() {
        request.reset()
        request.bodySource = nil
        response.reset()
        parser = HTTP1Parser()
        decoder = ChunkedDecoder()
        trailerFields.removeAll()
        needsReset = false
        keepAlive = true
        clientClosing = false
        isHEAD = false
        logExchange = true
        expectContinuePending = false
        bodyFraming = .none
        bodyRemaining = 0
        bodyDone = true
        bodyBroken = false
        consumer = .unclaimed
        discardBudget = 0
        responseMode = .notStarted
        handlerHoldsResponse = false
        flow = HTTP1FlowState()
        epoch &+= 1
    }

    /// Peer EOF: a body still expected can never complete.
    func onPeerClosed() {
        switch state {
        case .head:
            // Complete heads were parsed when they arrived; a partial one is dropped (Go does
            // not answer a request cut short by EOF either). Pipelined complete heads still
            // buffered after a pending response are parsed by `process()` first.
            break
        case .handling:
            if !bodyDone && !bodyBroken {
                keepAlive = false
                bodyBroken = true
                if case .reading(let reader, _) = consumer {
                    consumer = .readerDone
                    reader.requestBodyFailed(.connectionClosed)
                }
            }
        case .draining:
            state = .closing
        case .closing, .closed, .handedOff:
            break
        }
    }

    /// A timer from `timeout` fired.
    func onTimeout(_ kind: HTTP1Timeout.Kind) {
        switch kind {
        case .idle:
            state = .closing
        case .readHeader:
            if parser.hasConsumed || !input.isEmpty {
                reject(.headTimeout)
            } else {
                state = .closing
            }
        case .readBody:
            keepAlive = false
            switch state {
            case .draining:
                state = .closing
            case .handling:
                bodyBroken = true
                if case .reading(let reader, _) = consumer {
                    consumer = .readerDone
                    if responseMode == .notStarted { reject(.headTimeout) }
                    reader.requestBodyFailed(.timedOut)
                }
            default:
                break
            }
        }
    }
}
