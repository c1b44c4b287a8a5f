#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTPCore
import IOCore

/// Failures (before the head: retry or 502/503/504 as a handler error; after it: abort the
/// client connection) and the client side's signals (abort, writable again).
extension ProxyExchange {
    func upstreamFailed(_ c: UpstreamConnection, _ error: UpstreamError) {
        guard c === conn else { return }
        conn = nil
        switch phase {
        case .connecting, .resolving:
            if case .tcp(let name, let port) = c.pool.host.address.endpoint, error.isDialError {
                Resolver.shared.invalidate(host: name, port: port)
            }
            failBeforeHead(error)
        case .awaitingHead:
            failBeforeHead(error)
        case .streaming:
            abortMidBody()
        default:
            break
        }
    }

    /// A failure before any response byte reached the client: retry when safe, else answer.
    /// `c` broke before a usable head (reset, EOF, garbage): it is closed, not pooled, and the
    /// attempt fails (retried when safe, else 502).
    func closeBeforeHead(_ c: UpstreamConnection, _ error: UpstreamError) {
        conn = nil
        c.close()
        failBeforeHead(error)
    }

    func failBeforeHead(_ error: UpstreamError) {
        if let h = host { lastUpstream = h.address.dial }
        if let h = host, error != .noUpstream {
            h.countFailure(config.health, on: uloop.loop)
            failedSlots.append(h.slot)
        }
        let reusedFailure = connReused && (error == .closed || error.isIOError) && parser.status == 0
        abandonUpstream()
        if bodyPhase == .reading || bodyPhase == .paused || bodyPhase == .finished || bodyBytesSent > 0 {
            // The body was (partly) consumed: it cannot be replayed.
            finishClient(status: error.status, error: error)
            return
        }
        if bodyPhase == .waitingContinue { bodyPhase = .notStarted }
        if reusedFailure && attempts < 8 {
            // The upstream closed an idle connection just as we used it (Go's transport
            // retries these transparently): try again at once on a fresh connection.
            attempts -= 1
            attempt()
            return
        }
        if shouldRetry(error) {
            phase = .retryWait
            let gen = generation
            // The timer holds the exchange (nothing else does while it waits).
            uloop.loop.schedule(afterMilliseconds: config.tryIntervalMilliseconds) { [self] in
                guard generation == gen, phase == .retryWait else { return }
                attempt()
            }
            return
        }
        finishClient(status: error.status, error: error)
    }

    /// The error's text (`{http.error.message}` and the log line).
    private func describe(_ e: UpstreamError) -> String {
        let up = lastUpstream ?? "upstream"
        switch e {
        case .resolve(let s): return "dial \(up): lookup: \(s)"
        case .connect(let n): return "dial \(up): " + String(cString: strerror(n)).lowercased()
        case .dialTimeout: return "dial \(up): i/o timeout"
        case .responseHeaderTimeout: return "\(up): timeout awaiting response headers"
        case .ioTimeout: return "\(up): i/o timeout"
        case .io(let n): return "\(up): " + String(cString: strerror(n)).lowercased()
        case .closed: return "\(up): upstream closed the connection before a complete response (EOF)"
        case .protocolError(let p): return "\(up): malformed HTTP response: \(p)"
        case .fastcgi(let e): return "\(up): malformed FastCGI response: \(e)"
        case .noUpstream: return "no upstreams available"
        case .tls(let s): return s
        }
    }

    /// Caddy: retries need `lb_retries` or `lb_try_duration`; dial errors and "no upstream"
    /// are always retryable, other errors only for GET (the default `retry_match`).
    private func shouldRetry(_ error: UpstreamError) -> Bool {
        let c = config
        let elapsedMs = Int((Clock.monotonicNanos() &- startNanos) / 1_000_000)
        let budget = attempts <= c.retries || (c.tryDurationMilliseconds > 0 && elapsedMs + c.tryIntervalMilliseconds < c.tryDurationMilliseconds)
        guard budget else { return false }
        return error.isDialError || error == .noUpstream || request.method == .GET || isSubrequest
    }

    /// Drops the upstream side: closes the connection, leaves the pool queue, updates counters.
    func abandonUpstream() {
        if let c = conn {
            c.close()
            conn = nil
        }
        if phase == .waitingSlot { pool?.cancelWait(self) }
        if let h = host {
            h.inFlight.wrappingSubtract(1, ordering: .relaxed)
            host = nil
        }
        if let t = continueTimer { uloop.loop.cancel(t) }
        continueTimer = nil
    }

    /// Answers the client with an empty `status` response (Caddy's error responses carry
    /// `Content-Length: 0`), or ends a started one; then recycles.
    func finishClient(status: Int, error: UpstreamError? = nil) {
        if isFastCGI { logStderr(status: status) }
        phase = .done
        if isSubrequest { request.routeSuspension = nil }
        flow?.setFlowObserver(nil, for: response)
        if !response.headSent {
            // Caddy: the proxy returns a handler error, so `handle_errors` runs with
            // `{http.error.status_code}` etc.; the error is logged like `http.log.error`.
            let message = error.map { describe($0) }
            if let message { ProxyLog.error(message, request: request, status: status, upstream: lastUpstream) }
            response.fields.removeAll()
            response.failPending(request, status: status, message: message)
        } else if !response.finished {
            flow?.abortStreamedResponse(response)
            response.finish()
        }
        recycle()
    }

    /// The upstream died (or sent garbage) after the head went to the client.
    func abortMidBody() {
        if let h = host { h.countFailure(config.health, on: uloop.loop) }
        if isFastCGI { logStderr(status: response.status) }
        abandonUpstream()
        phase = .done
        flow?.abortStreamedResponse(response)
        if !response.finished { response.finish() }
        recycle()
    }

    // MARK: Client side

    /// The client connection is gone: cancel the upstream request (Caddy logs 499).
    func responseAborted() {
        guard phase != .done, phase != .idle else { return }
        abandonUpstream()
        phase = .done
        if isSubrequest { request.routeSuspension = nil }
        flow = nil
        if !response.headSent {
            // Drop a partly parsed upstream head.
            response.fields.truncate(count: headBaseCount, byteCount: headBaseBytes)
            response.sendEmpty()
        } else if !response.finished {
            response.finish()
        }
        recycle()
    }

    func responseWritable() {
        guard phase == .streaming, readingPaused, let c = conn else { return }
        readingPaused = false
        c.setReading(true)
        pumpBody()
    }
}

extension UpstreamError {
    var isIOError: Bool {
        if case .io = self { return true }
        return false
    }
}
