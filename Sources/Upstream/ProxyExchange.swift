import EventLoop
import HTTPCore
import IOCore

/// One proxied request: selects an upstream, gets a pooled (or new) connection, streams the
/// request to it and the response back, with back-pressure both ways. Recycled per loop, so a
/// request on a warm connection allocates nothing.
///
/// State machine (`phase`):
///
///     selecting ─► waitingSlot ─► resolving ─► connecting ─► awaitingHead ─► streaming ─► done
///         ▲              (max_conns)  (DNS)       (dial)     │    (1xx loop)   │  (101: tunnel)
///         └──── retryWait ◄── failure before the head, when safe to retry ─┘
///
/// Request body (`bodyPhase`): none | waitingContinue (Expect: 100-continue was forwarded;
/// the body is not read until the upstream sends 100, or after 1 s) | notStarted | reading |
/// paused (the upstream socket is full) | finished.
///
/// Failures before the response head: 502 (dial, reset, bad response), 504 (timeouts), 503
/// (no available upstream) — empty body, like Caddy. After the head: the client connection is
/// aborted so a truncated body is never passed off as complete.
final class ProxyExchange: UpstreamConnectionDelegate, RequestBodyReader, ResponseFlowObserver, PoolWaiter {
    enum Phase: Equatable { case idle, selecting, waitingSlot, resolving, connecting, awaitingHead, streaming, retryWait, done }
    enum BodyPhase: Equatable { case none, waitingContinue, notStarted, reading, paused, finished }

    /// Strong: an `unowned` reference costs an unowned-to-strong retain on every access.
    /// The loop state lives as long as its thread (`UpstreamLoop.of`); the cycle through
    /// its free list is broken there when a thread's loop changes.
    let uloop: UpstreamLoop
    var proxy: ReverseProxy?
    /// Held strongly for the exchange (released in `recycle`): an `unowned(unsafe)` reference
    /// is retained and released around every use, a strong one once per request.
    var request: HTTPRequest! = nil
    var response: HTTPResponse! = nil
    var flow: (any ResponseFlowControl)?
    var host: UpstreamHost?
    var pool: HostPool?
    var conn: UpstreamConnection?
    var connReused = false
    var phase: Phase = .idle
    var bodyPhase: BodyPhase = .none
    /// Bumped at every (re)use: async callbacks compare it to stay out of later requests.
    var generation: UInt64 = 0
    var attempts = 0
    var startNanos: UInt64 = 0
    var headStartNanos: UInt64 = 0
    /// Debug logging only (`ProxyDebug`): the request head as sent, and when.
    var debugHead: [UInt8]? = nil
    var debugSentNanos: UInt64 = 0
    var upFields = HTTPFields()
    /// `response.fields` before the upstream's head: the head is parsed straight into the
    /// client response's fields after these (no second copy), and cut back to them when a
    /// head is dropped (1xx, a retry after a failed attempt).
    var headBaseCount = 0
    var headBaseBytes = 0
    var parser = ResponseHeadParser()
    var decoder = ResponseBodyDecoder()
    let scratch = ByteBuffer(capacity: 512)
    var framing: RequestFraming = .none
    var isHEAD = false
    var upgrade: [UInt8]? = nil
    var expectContinue = false
    var bodyBytesSent: Int64 = 0
    var continueTimer: TimerID? = nil
    var cookieToSet: [UInt8]? = nil
    var readingPaused = false
    /// Slots of upstreams that failed for this request (retries try the others first).
    var failedSlots: [Int] = []
    /// FastCGI (`transport fastcgi`): the STDOUT stream taken out of its records (the CGI
    /// response is parsed and streamed from here), the record decoder, STDERR gathered for
    /// `capture_stderr`, END_REQUEST seen. The buffers are made on first use and kept.
    var isFastCGI = false
    var cgiOut: ByteBuffer? = nil
    var cgiParams: ByteBuffer? = nil
    var fcgiDecoder = FastCGIResponseDecoder()
    var fcgiStderr: [UInt8] = []
    var fcgiEnded = false
    /// The upstream of the last failed attempt (error messages; cold path).
    var lastUpstream: String? = nil
    /// `forward_auth`: the request is asked about (a GET to `subrequestTarget`, no body) and a
    /// 2xx answer lets it go on (`ProxySubrequest`).
    var subrequest: (any ProxySubrequest)? = nil
    /// `subrequest != nil`, as a plain flag: testing the optional existential on the request
    /// path copies and destroys it each time.
    var isSubrequest = false
    /// The subrequest's target, built once per request (retries send the same).
    lazy var subrequestTarget = ByteBuffer(capacity: 256)
    private var inStart = false

    init(loop: UpstreamLoop) {
        uloop = loop
    }

    /// The proxy's configuration, borrowed (a plain getter would copy the struct and retain
    /// every array and closure in it on each access).
    var config: ProxyConfiguration {
        _read { yield proxy.unsafelyUnwrapped.configuration }
    }

    // MARK: Lifecycle

    func start(_ p: ReverseProxy, _ req: HTTPRequest, _ resp: HTTPResponse) -> HandlerResult {
        generation &+= 1
        proxy = p
        request = req
        response = resp
        attempts = 0
        bodyBytesSent = 0
        if !failedSlots.isEmpty { failedSlots.removeAll(keepingCapacity: true) }
        readingPaused = false
        var hasBody = req.bodySource != nil
        isFastCGI = p.isFastCGI
        if p.hasSubrequest, let sub = p.configuration.subrequest {
            // forward_auth: a GET without a body (the body stays for the handlers after it).
            subrequest = sub
            isSubrequest = true
            subrequestTarget.clear()
            sub.writeTarget(req, work: scratch, into: subrequestTarget)
            framing = .none
            isHEAD = false
            hasBody = false
        } else {
            framing = RequestHead.framing(req)
            isHEAD = req.method == .HEAD
        }
        if isFastCGI {
            // Caddy's client.go: HEAD and OPTIONS go without a body; any other body needs a
            // length (CONTENT_LENGTH), else 411.
            upgrade = nil
            expectContinue = false
            let sendsBody = hasBody && req.method != .HEAD && req.method != .OPTIONS
            bodyPhase = sendsBody ? .notStarted : .none
            if sendsBody, framing == .chunked {
                response.fields.removeAll()
                response.failPending(req, status: 411, message: "fastcgi: request body without a Content-Length")
                recycle()
                return .done
            }
            fcgiDecoder = FastCGIResponseDecoder()
            fcgiEnded = false
            if !fcgiStderr.isEmpty { fcgiStderr.removeAll(keepingCapacity: true) }
            if cgiOut == nil {
                cgiOut = ByteBuffer(capacity: 16384)
                cgiParams = ByteBuffer(capacity: 2048)
            }
            cgiOut?.clear()
        } else {
            // Upgrade needs a Connection field, 100-continue an Expect field: the token mask
            // answers "absent" without scanning the fields.
            upgrade = req.fields.mayContain(.connection) ? HopByHop.upgradeType(req.fields) : nil
            expectContinue = hasBody && req.fields.mayContain(.expect) && ProxyExchange.expectsContinue(req.fields)
            bodyPhase = hasBody ? .notStarted : .none
        }
        headBaseCount = resp.fields.count
        headBaseBytes = resp.fields.byteCount
        flow = resp.flowControl
        flow?.setFlowObserver(self, for: resp)
        // Only `lb_try_duration` needs the start time (one clock read less per request).
        startNanos = p.configuration.tryDurationMilliseconds > 0 ? Clock.monotonicNanos() : 0
        inStart = true
        attempt()
        inStart = false
        if phase == .done {
            recycle()
            return .done
        }
        return .pending
    }

    private static func expectsContinue(_ f: HTTPFields) -> Bool {
        guard let i = f.firstIndex(.expect) else { return false }
        return f.withField(i) { _, v in ASCII.equalsLowercase(v, "100-continue") }
    }

    /// Returns the object to its loop's free list (never while a request refers to it).
    func recycle() {
        if inStart { return }
        debugHead = nil
        generation &+= 1
        if let t = continueTimer { uloop.loop.cancel(t) }
        continueTimer = nil
        phase = .idle
        request = nil
        response = nil
        flow = nil
        proxy = nil
        // Usually nil already (finished exchanges dropped them): no store, no release call.
        if host != nil { host = nil }
        pool = nil
        if conn != nil { conn = nil }
        if upgrade != nil { upgrade = nil }
        if cookieToSet != nil { cookieToSet = nil }
        if lastUpstream != nil { lastUpstream = nil }
        if isSubrequest {
            subrequest = nil
            isSubrequest = false
        }
        if upFields.count > 0 { upFields.removeAll() }
        if uloop.freeExchanges.count < 1024 { uloop.freeExchanges.append(self) }
    }

    // MARK: Selecting and connecting

    func attempt() {
        attempts += 1
        phase = .selecting
        if cookieToSet != nil { cookieToSet = nil }
        let px = proxy.unsafelyUnwrapped
        let balancer = px.balancer
        let h: UpstreamHost
        if let only = balancer.single {
            // One upstream: what every policy picks while it is available (no selection
            // context to build, no cookie to set: `pick` answers the same).
            guard balancer.singleIsAvailable(only) else {
                failBeforeHead(.noUpstream)
                return
            }
            h = only
        } else {
            let ctx = LoadBalancer.Context(request: request, rng: uloop.rng, excluded: failedSlots)
            guard let picked = balancer.select(ctx, cookieToSet: &cookieToSet) else {
                failBeforeHead(.noUpstream)
                return
            }
            h = picked
        }
        host = h
        if ProxyDebug.enabled.load(ordering: .relaxed) { ProxyDebug.selected(h.address.dial, total: balancer.hosts.count) }
        h.inFlight.wrappingAdd(1, ordering: .relaxed)
        let p = uloop.pool(for: h, proxy: px)
        pool = p
        acquire(p)
    }

    private func acquire(_ p: HostPool) {
        if let c = p.takeIdle() {
            conn = c
            connReused = true
            c.delegate = self
            sendRequest()
            return
        }
        guard p.mayOpen() else {
            phase = .waitingSlot
            p.wait(self)
            return
        }
        dialNew(p)
    }

    func poolSlotAvailable() {
        guard phase == .waitingSlot, let p = pool else { return }
        acquire(p)
    }

    private func dialNew(_ p: HostPool) {
        let c = p.makeConnection()
        conn = c
        connReused = false
        c.delegate = self
        phase = .connecting
        switch p.host.address.endpoint {
        case .unix(let path):
            c.dial([.unix(path: path)])
        case .tcp(let name, let port):
            if let ip = SocketAddress(ip: name, port: port) {
                c.dial([ip])
            } else if let cached = Resolver.shared.cached(host: name, port: port) {
                c.dial(cached)
            } else {
                phase = .resolving
                let gen = generation
                let me = LoopBound(self)
                Resolver.shared.resolve(host: name, port: port, on: uloop.loop) { result in
                    me.value.resolved(result, generation: gen)
                }
            }
        }
    }

    private func resolved(_ result: Result<[SocketAddress], IOError>, generation gen: UInt64) {
        guard gen == generation, phase == .resolving, let c = conn else { return }
        switch result {
        case .success(let addresses):
            phase = .connecting
            c.dial(addresses)
        case .failure(let e):
            c.close()
            conn = nil
            failBeforeHead(.resolve(e.description))
        }
    }

    func upstreamConnected(_ c: UpstreamConnection) {
        guard c === conn, phase == .connecting else { return }
        sendRequest()
    }

    // MARK: Request

    private func sendRequest() {
        guard let c = conn, let h = host else { return }
        phase = .awaitingHead
        parser.reset()
        response.fields.truncate(count: headBaseCount, byteCount: headBaseBytes)
        // Only `unhealthy_latency` needs the head's latency (one clock read less per request).
        let p = proxy.unsafelyUnwrapped
        if p.measuresHeadLatency { headStartNanos = Clock.monotonicNanos() }
        if isFastCGI {
            sendFastCGIRequest(c, h, p)
            return
        }
        let debug = ProxyDebug.enabled.load(ordering: .relaxed)
        let queued = debug ? c.output.readableBytes : 0
        if isSubrequest {
            RequestHead.buildFields(request, config, upstream: h.address, upgrade: upgrade, into: &upFields, scratch: scratch)
            upFields.remove(.trailer)
            RequestHead.encodeSubrequest(target: subrequestTarget.readable, fields: upFields, into: c.output)
        } else if p.directRequestHead {
            RequestHead.encodeDirect(request, proxy: p, upstream: h, upgrade: upgrade, framing: framing, into: c.output)
        } else {
            RequestHead.buildFields(request, config, upstream: h.address, upgrade: upgrade, into: &upFields, scratch: scratch)
            RequestHead.encode(request, fields: upFields, framing: framing, into: c.output)
        }
        if debug {
            let o = c.output
            debugHead = Array(UnsafeRawBufferPointer(start: o.base + o.readerIndex + queued, count: o.readableBytes - queued))
            debugSentNanos = Clock.monotonicNanos()
        }
        switch bodyPhase {
        case .notStarted where expectContinue:
            bodyPhase = .waitingContinue
            let gen = generation
            continueTimer = uloop.loop.schedule(afterMilliseconds: 1000) { [self] in
                guard generation == gen else { return }
                continueTimer = nil
                if bodyPhase == .waitingContinue { startBody() }
            }
            c.flushQueued()
            c.armReadTimer(head: true)
        case .notStarted:
            c.flushQueued()
            startBody()
        default:
            c.flushQueued()
            c.armReadTimer(head: true)
        }
    }

    func startBody() {
        if let t = continueTimer { uloop.loop.cancel(t) }
        continueTimer = nil
        bodyPhase = .reading
        request.bodySource?.startReading(self)
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        guard bodyPhase == .reading || bodyPhase == .paused, let c = conn else { return }
        if bodyBytesSent + Int64(bytes.count) > request.bodyLimit {
            bodyTooLarge()
            return
        }
        bodyBytesSent += Int64(bytes.count)
        let drained: Bool
        if isFastCGI {
            FastCGI.appendStream(.stdin, bytes, into: c.output)
            drained = c.flushQueued()
        } else if framing == .chunked {
            c.output.appendHex(bytes.count)
            c.output.append("\r\n")
            c.output.append(bytes)
            c.output.append("\r\n")
            drained = c.flushQueued()
        } else {
            drained = c.send(bytes)
        }
        if !drained && bodyPhase == .reading {
            bodyPhase = .paused
            request.bodySource?.pauseReading()
        }
    }

    func requestBodyFinished() {
        guard bodyPhase == .reading || bodyPhase == .paused, let c = conn else { return }
        bodyPhase = .finished
        if isFastCGI {
            FastCGI.appendEndOfStream(.stdin, into: c.output)
        } else if framing == .chunked {
            // The last chunk, with the client's trailer fields when it sent any.
            if let t = request.bodySource?.trailers, t.count > 0 {
                c.output.append("0\r\n")
                for i in 0..<t.count {
                    t.withField(i) { name, value in
                        if HopByHop.isForbiddenTrailer(HeaderToken.classify(name)) { return }
                        c.output.append(name)
                        c.output.append(": ")
                        c.output.append(value)
                        c.output.append("\r\n")
                    }
                }
                c.output.append("\r\n")
            } else {
                c.output.append("0\r\n\r\n")
            }
        }
        c.flushQueued()
        c.armReadTimer(head: phase == .awaitingHead)
    }

    func requestBodyFailed(_ error: RequestBodyError) {
        guard phase != .done, phase != .idle, error != .abandoned else { return }
        // The client's body broke (bad framing, timeout, EOF): the upstream request cannot
        // complete. The protocol answers the client (400/408) or the connection is gone.
        bodyPhase = .finished
        abandonUpstream()
        finishClient(status: 502)
    }

    /// More body than `request_body max_size` allows: as Caddy's proxy seeing Go's
    /// `MaxBytesError`, the upstream request is abandoned and the client gets a 413 handler
    /// error (`handle_errors` may answer); the protocol discards the rest of the body.
    func bodyTooLarge() {
        bodyPhase = .finished
        abandonUpstream()
        phase = .done
        flow?.setFlowObserver(nil, for: response)
        if !response.headSent {
            let message = "http: request body too large"
            ProxyLog.error(message, request: request, status: 413, upstream: lastUpstream)
            response.fields.removeAll()
            response.failPending(request, status: 413, message: message)
        } else if !response.finished {
            flow?.abortStreamedResponse(response)
            response.finish()
        }
        recycle()
    }

    func upstreamWritable(_ c: UpstreamConnection) {
        guard c === conn else { return }
        if bodyPhase == .paused {
            bodyPhase = .reading
            request.bodySource?.resumeReading()
        }
    }
}

