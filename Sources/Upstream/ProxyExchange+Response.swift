import EventLoop
import HTTPCore
import IOCore

/// The response direction: head (1xx handling, header rewriting), body streaming with
/// back-pressure, completion, and the switch to a tunnel after `101`.
extension ProxyExchange {
    func upstreamReadable(_ c: UpstreamConnection) {
        guard c === conn else { return }
        processInput()
    }

    func processInput() {
        if isFastCGI {
            processFastCGI()
            return
        }
        while let c = conn {
            switch phase {
            case .awaitingHead:
                switch parser.parse(c.input, into: &response.fields) {
                case .needMore:
                    if c.peerEOF {
                        closeBeforeHead(c, .closed)
                    }
                    return
                case .failure(let e):
                    closeBeforeHead(c, .protocolError(e))
                    return
                case .complete:
                    if !onHead(c) { return }
                }
            case .streaming:
                pumpBody()
                return
            default:
                return
            }
        }
    }

    /// A complete head. Returns true to keep processing input.
    func onHead(_ c: UpstreamConnection) -> Bool {
        let status = parser.status
        if status < 200 && status != 101 && !parser.cgi {
            // RFC 9110 §15.2: interim responses. 100 releases a body held back for
            // Expect: 100-continue (the client gets its own 100 when we start reading);
            // others (102, 103) are not forwarded.
            if status == 100 && bodyPhase == .waitingContinue { startBody() }
            parser.reset()
            response.fields.truncate(count: headBaseCount, byteCount: headBaseBytes)
            return true
        }
        if let head = debugHead {
            debugHead = nil
            ProxyDebug.roundtrip(upstream: host?.address.dial ?? "", nanos: Clock.monotonicNanos() &- debugSentNanos,
                                 request: request, head: head, response: response.fields, from: headBaseCount, status: status)
        }
        if isSubrequest {
            // forward_auth: the route walk resumes only after a 2xx.
            if status >= 200 && status < 300 {
                countPassiveHealth(status)
                authorized(c)
                return false
            }
            request.routeSuspension = nil
        }
        if status == 101 && !parser.cgi {
            startTunnel(c)
            return false
        }
        countPassiveHealth(status)
        copyResponseFields()
        let bodyFraming = parser.framing(isHEAD: isHEAD)
        decoder.start(bodyFraming)
        switch bodyFraming {
        case .chunked, .untilClose: c.readSize = 65536
        case .length(let n) where n > 65536: c.readSize = 65536
        default: break
        }
        phase = .streaming
        c.armReadTimer(head: false)
        response.status = status
        switch bodyFraming {
        case .length(let n): response.sendHead(contentLength: n)
        case .none: response.sendHead(contentLength: isHEAD ? parser.contentLength : 0)
        case .chunked, .untilClose: response.sendHead(contentLength: nil)
        }
        return true
    }

    /// Passive health checks (Caddy: unhealthy_status, unhealthy_latency).
    @inline(__always)
    private func countPassiveHealth(_ status: Int) {
        if let host, config.health.failDurationMilliseconds > 0 {
            let slow = config.health.unhealthyLatencyMilliseconds.map { limit in
                Int((Clock.monotonicNanos() &- headStartNanos) / 1_000_000) > limit
            } ?? false
            if config.health.isUnhealthyStatus(status) || slow {
                host.countFailure(config.health, on: uloop.loop)
            }
        }
    }

    /// `forward_auth` got a 2xx: the chosen fields go onto the request, the answer (head and
    /// body) is dropped — the connection is pooled again when the whole body is already here,
    /// else closed, as Go's transport does when Caddy closes an unread body — and the request
    /// goes on from the handler after this one, with its method, target and body untouched.
    private func authorized(_ c: UpstreamConnection) {
        let sub = subrequest.unsafelyUnwrapped
        sub.copyFields(into: request, from: response.fields, start: headBaseCount)
        response.fields.truncate(count: headBaseCount, byteCount: headBaseBytes)
        // Caddy's cookie policy sets the sticky cookie on the client's response whatever the
        // answer.
        appendStickyCookie()
        let bodyFraming = parser.framing(isHEAD: false)
        decoder.start(bodyFraming)
        var reusable = parser.keepAlive && bodyFraming != .untilClose
        drain: while true {
            switch decoder.next(c.input) {
            case .data(let n): c.input.consume(n)
            case .done: break drain
            case .needMore, .failure:
                reusable = false
                break drain
            }
        }
        conn = nil
        c.release(reusable: reusable)
        if let h = host {
            h.inFlight.wrappingSubtract(1, ordering: .relaxed)
            host = nil
        }
        phase = .done
        flow?.setFlowObserver(nil, for: response)
        let req: HTTPRequest = request, resp: HTTPResponse = response
        recycle()
        sub.proceed(req, resp)
    }

    /// The upstream's fields (already in `response.fields` after `headBaseCount`) → client
    /// response (caddy-behavior §12): hop-by-hop removed in place, the upstream's Server and
    /// Date kept (ours suppressed), `Via` added, sticky cookie, then `header_down`.
    private func copyResponseFields() {
        var trailer: HTTPField? = nil
        var hasServer = false
        scanHead(&trailer, .trailer, &hasServer)
        HopByHop.removeHopByHop(&response.fields, from: headBaseCount)
        if let trailer {
            // Trailer is hop-by-hop, but Go's ReverseProxy announces the trailers it will copy.
            response.fields.append(.trailer, valueOf: trailer)
        }
        if !hasServer { response.fields.suppressServerField() }
        addVia()
        appendStickyCookie()
        if let host {
            for op in config.responseHeaderOps {
                op.apply(to: &response.fields, request: request, upstream: host.address, scratch: scratch)
            }
        }
    }

    /// Finds, among the upstream's fields, the first with `token` and whether Server is there.
    private func scanHead(_ found: inout HTTPField?, _ token: HeaderToken, _ hasServer: inout Bool) {
        let f = response.fields
        for i in headBaseCount..<f.entries.count {
            let e = f.entries[i]
            if e.token == token && found == nil { found = e }
            if e.token == .server { hasServer = true }
        }
    }

    /// `lb_policy cookie` chose an upstream for a client without the cookie: `Set-Cookie` it.
    private func appendStickyCookie() {
        guard let cookie = cookieToSet, case .cookie(let name, _) = config.policy else { return }
        scratch.clear()
        scratch.append(string: name)
        scratch.append(byte: UInt8(ascii: "="))
        scratch.append(cookie)
        scratch.append("; Path=/")
        if request.connection.isTLS { scratch.append("; Secure") }
        response.fields.append(.setCookie, value: scratch.readable)
    }

    private func addVia() {
        scratch.clear()
        // A FastCGI response has no protocol version: Caddy's Via then reads "0.0".
        scratch.append(parser.cgi ? "0.0 " : parser.minorVersion == 0 ? "1.0 " : "1.1 ")
        scratch.append(string: config.viaName)
        response.fields.append(.via, value: scratch.readable)
    }

    /// Moves decoded body bytes to the client until the input is empty, the client is full,
    /// or the body ends.
    func pumpBody() {
        guard let c = conn else { return }
        // FastCGI: the body is the STDOUT stream, which ends with END_REQUEST.
        let src = isFastCGI ? cgiOut.unsafelyUnwrapped : c.input
        while phase == .streaming {
            switch decoder.next(src) {
            case .data(let n):
                let bytes = UnsafeRawBufferPointer(start: src.base + src.readerIndex, count: n)
                response.write(bytes)
                src.consume(n)
            case .needMore:
                if isFastCGI ? fcgiEnded || c.peerEOF : c.peerEOF {
                    decoder.finishAtEOF()
                    continue
                }
                if let f = flow, !f.isResponseWritable {
                    readingPaused = true
                    c.setReading(false)
                }
                return
            case .done:
                finishSuccess(c)
                return
            case .failure:
                abortMidBody()
                return
            }
        }
    }

    private func finishSuccess(_ c: UpstreamConnection) {
        // FastCGI: one request per connection, as Caddy (no FCGI_KEEP_CONN).
        let reusable = !isFastCGI && parser.keepAlive && decoder.framing != .untilClose
            && (bodyPhase == .none || bodyPhase == .finished)
        if isFastCGI { logStderr(status: response.status) }
        conn = nil
        c.release(reusable: reusable)
        if bodyPhase != .none && bodyPhase != .finished {
            bodyPhase = .finished
        }
        if let h = host {
            h.inFlight.wrappingSubtract(1, ordering: .relaxed)
            host = nil
        }
        phase = .done
        flow?.setFlowObserver(nil, for: response)
        if !decoder.trailerBytes.isEmpty {
            // Caddy forwards the upstream's trailers (Go's ReverseProxy copies res.Trailer).
            ResponseBodyDecoder.parseTrailers(decoder.trailerBytes, into: &response.trailers)
        }
        response.finish()
        recycle()
    }

    // MARK: Upgrade

    /// `101 Switching Protocols` to a request that asked for an upgrade: the client gets the
    /// 101 (with `Connection: Upgrade` and the upstream's `Upgrade`) and both sockets go to a
    /// `Tunnel` that copies bytes both ways (RFC 9110 §7.8; WebSocket, RFC 6455 §4).
    private func startTunnel(_ c: UpstreamConnection) {
        guard upgrade != nil, let f = flow, bodyPhase == .none else {
            closeBeforeHead(c, .protocolError(.badStatusLine))
            return
        }
        var upstreamUpgrade: HTTPField? = nil
        var hasServer = false
        scanHead(&upstreamUpgrade, .upgrade, &hasServer)
        HopByHop.removeHopByHop(&response.fields, from: headBaseCount)
        response.fields.append(.connection, "Upgrade")
        if let upstreamUpgrade {
            response.fields.append(.upgrade, valueOf: upstreamUpgrade)
        } else if let up = upgrade {
            up.withUnsafeBytes { response.fields.append(.upgrade, value: $0) }
        }
        if !hasServer { response.fields.suppressServerField() }
        addVia()
        if let host {
            for op in config.responseHeaderOps {
                op.apply(to: &response.fields, request: request, upstream: host.address, scratch: scratch)
            }
        }
        response.status = 101
        let tunnel = Tunnel(loop: uloop.loop)
        let (fd, tls) = c.detach()
        tunnel.setUpstream(fd: fd, tls: tls, pending: c.input.readable)
        c.input.clear()
        conn = nil
        if let h = host {
            h.inFlight.wrappingSubtract(1, ordering: .relaxed)
            host = nil
        }
        phase = .done
        f.setFlowObserver(nil, for: response)
        if f.switchProtocols(response, to: tunnel) {
            // The response belongs to a connection that no longer exists for us.
            response = nil
            request = nil
        } else {
            tunnel.close()
            response.fields.removeAll()
            response.status = 502
            response.sendEmpty()
        }
        recycle()
    }
}
