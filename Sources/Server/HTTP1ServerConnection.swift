#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP1
import HTTP2
import HTTPCore
import IOCore
import TLS

/// Creates plain-TCP HTTP/1 connections.
package struct HTTP1ConnectionFactory: ConnectionFactory {
    package init() {}

    package func makeConnection(fd: Int32, peer: SocketAddress?, listener: ServedListener, server: RuntimeServer,
                                runtime: ServerRuntime, context: LoopContext) {
        let tls = server.tlsContexts?[listener.protocols]
        let allowH2C = tls == nil && listener.protocols.contains(.h2c)
        let c: HTTP1ServerConnection
        if tls == nil, let pooled = context.pooledConnection(for: runtime) {
            // A plain connection that closed on this loop, reset (HTTP1ServerConnection+Pool).
            pooled.reopen(fd: fd, peer: peer, server: server, allowH2C: allowH2C)
            c = pooled
        } else {
            c = HTTP1ServerConnection(fd: fd, peer: peer, server: server, runtime: runtime, context: context, tls: tls,
                                      allowH2C: allowH2C)
        }
        c.altSvc = listener.altSvc
        c.start()
    }
}

/// Drives one HTTP/1 connection on one loop: socket reads and writes, epoll interest, timers,
/// backpressure. The protocol itself is `HTTP1Connection` (sans-I/O).
final class HTTP1ServerConnection: TimeoutNode, EventHandler, ManagedConnection, HTTP1ConnectionDelegate,
    HTTP1Responder, ServiceRequester, HTTP1TransportDelegate
{
    /// The socket; a pooled object gets another one in `reopen` (HTTP1ServerConnection+Pool).
    var fd: Int32
    unowned(unsafe) let ctx: LoopContext
    var server: RuntimeServer
    /// Keeps the runtime (handler tree) alive while the connection uses it. A pooled object is
    /// only ever reused for connections of the same runtime.
    let runtime: ServerRuntime
    let input = ByteBuffer(capacity: 4096)
    let output = ByteBuffer(capacity: 4096)
    var conn: HTTP1Connection!
    // Per-socket state: every field below is reset by `reopen` (HTTP1ServerConnection+Pool).
    var interest: Interest = .read
    var registered = false
    var closed = false
    var lingering = false
    var lastAction: HTTP1Action = .readMore
    var serviceRequested = false
    /// Shutdown or reload asked this connection to finish its current request and close.
    var draining = false
    /// TCP_NODELAY is set (lazily: see `flush`).
    var noDelay = false
    /// HTTP/2 once ALPN chose `h2` (or an h2c preface arrived); then `conn` is released.
    var h2: HTTP2Connection?
    var allowH2C: Bool
    /// `Alt-Svc` for every response when the server also serves HTTP/3 (RFC 7838, RFC 9114 §3.1.1).
    var altSvc: [UInt8]? = nil
    /// The timer period armed now: kind (0 header/preface, 1 idle, 2 body) and epoch.
    var armedKey: (UInt8, UInt64)?
    /// TLS layer on HTTPS listeners: socket bytes go through `cipherIn`/`cipherOut`, and the
    /// protocol sees plaintext in `input`/`output` exactly as on plain HTTP.
    private(set) var tls: TLSConnection?
    private(set) var cipherIn: ByteBuffer?
    private var cipherOut: ByteBuffer?
    /// True when nothing is waiting to be written (plaintext, ciphertext, or a file region the
    /// protocol left for sendfile(2)).
    private var allFlushed: Bool {
        // `cipherOut` only exists with TLS (this runs several times per request).
        guard output.isEmpty else { return false }
        if hasTLS, let co = cipherOut, !co.isEmpty { return false }
        return !(conn?.hasPendingFile ?? false)
    }
    /// Set once: the connection was created with a TLS layer (`cipherIn`/`cipherOut` exist
    /// until a hand-over).
    private let hasTLS: Bool

    init(fd: Int32, peer: SocketAddress?, server: RuntimeServer, runtime: ServerRuntime, context: LoopContext,
         tls tlsContext: TLSContext? = nil, allowH2C: Bool = false) {
        self.allowH2C = allowH2C
        self.fd = fd
        self.ctx = context
        self.server = server
        self.runtime = runtime
        hasTLS = tlsContext != nil
        super.init()
        var info = ConnectionInfo(remote: peer, local: nil, isTLS: tlsContext != nil)
        info.socket = fd
        if let tlsContext {
            let cin = ByteBuffer(capacity: 16 * 1024 + 512)
            let cout = ByteBuffer(capacity: 16 * 1024 + 512)
            cipherIn = cin
            cipherOut = cout
            tls = try? TLSConnection(server: tlsContext, input: cin, output: cout)
        }
        var cfg = HTTP1Configuration()
        cfg.limits.maxHeadBytes = context.limits.maxHeaderBytes
        cfg.timeouts.readHeader = .milliseconds(context.limits.readHeaderTimeoutMilliseconds)
        cfg.timeouts.idle = .milliseconds(context.limits.idleTimeoutMilliseconds)
        cfg.timeouts.readBody = .milliseconds(context.limits.readBodyTimeoutMilliseconds)
        cfg.serverName = String(decoding: runtime.serverHeader, as: UTF8.self)
        conn = HTTP1Connection(input: input, output: output, configuration: cfg, dateCache: context.dateCache,
                               connectionInfo: info, responder: self)
        conn.delegate = self
        tls?.localAddressSource = self
        // Plain TCP: large file bodies leave with sendfile(2) (HTTP1ServerConnection+Sendfile).
        conn.zeroCopyFiles = tlsContext == nil
    }

    func start() {
        if cipherIn != nil && tls == nil {
            // The TLS context could not create a connection (out of memory): refuse.
            Glibc.close(fd)
            closed = true
            return
        }
        do {
            try ctx.loop.register(fd: fd, interest: .read, handler: self)
            registered = true
        } catch {
            Glibc.close(fd)
            closed = true
            return
        }
        ctx.add(fd, self)
        act(protoStart())
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        if closed { return }
        if events & EventBits.writable != 0 {
            guard flush() else { return }
            if allFlushed {
                switch lastAction {
                case .flushAndClose:
                    beginLinger()
                    return
                case .wait:
                    if !protoPending { act(protoResume()) } else { waitForHandler() }
                case .flush, .readMore:
                    if draining && !protoPending {
                        beginLinger()
                        return
                    }
                    setInterest(.read)
                    updateTimer()
                default:
                    break
                }
            }
        }
        if closed { return }
        if events & (EventBits.readable | EventBits.hangup | EventBits.error) != 0 {
            readInput()
        }
    }

    private func readInput() {
        if lingering {
            lingerRead()
            return
        }
        if tls != nil {
            readTLS()
            return
        }
        let r: IOResult
        do {
            r = try Socket.read(fd, into: input, minimumSpace: (conn?.isStreamingRequestBody ?? true) ? 65536 : 2048)
        } catch {
            close()
            return
        }
        switch r {
        case .done(0):
            act(protoPeerClosed())
        case .done:
            act(protoReceive())
        case .wouldBlock:
            break
        }
    }

    /// HTTPS: ciphertext from the socket, plaintext to the protocol (handshake records and
    /// alerts go out through `cipherOut`).
    private func readTLS() {
        guard let tls, let cipherIn else { return }
        let r: IOResult
        do {
            r = try Socket.read(fd, into: cipherIn, minimumSpace: 4096)
        } catch {
            close()
            return
        }
        switch r {
        case .wouldBlock:
            return
        case .done(0):
            act(protoPeerClosed())
            return
        case .done:
            break
        }
        // Feed, let the protocol consume, and repeat while TLS holds more plaintext.
        while !closed {
            let result: TLSFeedResult
            do {
                result = try tls.feed(into: input, limit: 64 * 1024)
            } catch {
                // A handshake failure or bad record: send the alert (or the plaintext-HTTP 400)
                // that TLS queued, then close.
                _ = flushCiphertext()
                close()
                return
            }
            if result.handshakeCompleted { handshakeCompleted(tls) }
            if result.closeNotifyReceived {
                act(protoPeerClosed())
                return
            }
            if input.isEmpty {
                // Handshake in progress: send what TLS produced, keep the read-header timer.
                if !allFlushed {
                    guard flush() else { return }
                    if !allFlushed { setInterest([.read, .write]) }
                }
                updateTimer()
                return
            }
            act(protoReceive())
            guard tls.hasPendingPlaintext, lastAction == .readMore || lastAction == .flush else { return }
        }
    }

    private func handshakeCompleted(_ tls: TLSConnection) {
        guard let info = tls.info else { return }
        defer { if info.applicationProtocol == "h2" { switchToHTTP2() } }
        conn.request.connection.serverName = info.serverName
        conn.request.connection.tlsVersion = info.version
        conn.request.connection.tlsCipherSuite = info.cipherSuite
        conn.request.connection.tlsResumed = info.resumed
        conn.request.connection.tlsProtocol = info.applicationProtocol
        if let c = info.clientCertificate {
            conn.request.connection.tlsClientCertificate = ClientCertificateFields(
                subject: c.subject, issuer: c.issuer, serial: c.serial, fingerprint: c.fingerprint, pem: c.pem)
        }
        conn.request.connection.strictSNIHost = !tls.context.clientAuthPolicies.isEmpty
    }

    /// Writes `cipherOut`; false when the connection was closed by an error.
    private func flushCiphertext() -> Bool {
        guard let cipherOut else { return true }
        while !cipherOut.isEmpty {
            do {
                let r = try Socket.write(fd, from: cipherOut)
                if case .wouldBlock = r { return true }
                noteWriteProgress()
            } catch {
                close()
                return false
            }
        }
        cipherOut.compact()
        return true
    }

    /// Applies an action from the protocol.
    private func act(_ action: HTTP1Action) {
        lastAction = action
        switch action {
        case .readMore, .flush:
            if !allFlushed { guard flush() else { return } }
            if draining && allFlushed && !protoPending {
                beginLinger()
                return
            }
            setInterest(allFlushed ? .read : [.read, .write])
        case .wait:
            guard flush() else { return }
            if allFlushed {
                if !protoPending {
                    act(protoResume())
                    return
                }
                waitForHandler()
            } else {
                setInterest(.write)
            }
        case .flushAndClose:
            guard flush() else { return }
            if allFlushed {
                beginLinger()
                return
            }
            setInterest(.write)
        case .close:
            close()
            return
        case .switchToHTTP2:
            // h2c prior knowledge (RFC 9113 §3.3) when the listener lists h2c; otherwise close
            // quietly, as Caddy does on an h1-only listener.
            guard allowH2C else {
                close()
                return
            }
            switchToHTTP2()
            act(protoStart())
            return
        }
        updateTimer()
    }

    /// Writes pending output; false when the connection was closed by an error.
    @inline(__always)
    private func flush() -> Bool {
        // TCP_NODELAY only once a connection writes for something other than its last
        // response: a response followed by close(2) needs none (the FIN pushes the last
        // segment out, Nagle or not), so a `Connection: close` exchange saves a setsockopt.
        // Keep-alive, streaming and TLS handshakes get it before their first write.
        if !noDelay && lastAction != .flushAndClose { setNoDelay() }
        if let tls {
            if !output.isEmpty {
                do {
                    try tls.write(from: output)
                } catch {
                    close()
                    return false
                }
                output.clear()
            }
            guard flushCiphertext() else { return false }
            // Streaming handlers (file bodies, reverse_proxy) resume once the ciphertext is out.
            if allFlushed { protoTransportDrained() }
            return true
        }
        // A head followed by a sendfile(2) body is sent with MSG_MORE, so the kernel puts it in
        // the same segment as the first file bytes instead of a packet of its own.
        let corked = conn?.hasPendingFile ?? false
        while !output.isEmpty {
            do {
                let r = corked ? try writeCorked() : try Socket.write(fd, from: output)
                if case .wouldBlock = r { return true }
                noteWriteProgress()
            } catch {
                close()
                return false
            }
        }
        output.compact()
        if let c = conn, c.hasPendingFile {
            guard sendPendingFile(c) else { return false }
            if c.hasPendingFile { return true }
        }
        protoTransportDrained()
        return true
    }

    /// Output drained while a handler holds a response. HTTP/1 waits for the handler (its
    /// service request); HTTP/2 must go on reading (WINDOW_UPDATE frames are what let a
    /// streaming response continue, RFC 9113 §6.9) and gets another turn to produce frames.
    private func waitForHandler() {
        if h2 != nil {
            setInterest(.read)
            requestServiceOnce()
        } else {
            setInterest([])
        }
    }

    private func setInterest(_ i: Interest) {
        guard registered, i != interest else { return }
        interest = i
        ctx.loop.modify(fd: fd, interest: i)
    }

    // MARK: Timers

    private func updateTimer() {
        if closed { return }
        if !allFlushed {
            if !isArmed(in: ctx.writeTimeouts) { ctx.writeTimeouts.arm(self, now: Clock.monotonicNanos()) }
            armedKey = nil
            return
        }
        let key = protoTimerKey()
        if let k = key, let a = armedKey, k == a, isArmed { return }
        armedKey = key
        guard let (kind, _) = key else {
            disarmTimeout()
            return
        }
        let list: TimeoutList
        switch kind {
        case 0: list = ctx.headerTimeouts
        case 1: list = ctx.idleTimeouts
        default: list = ctx.bodyTimeouts
        }
        list.arm(self, now: Clock.monotonicNanos())
    }

    override func timeoutExpired() {
        if closed { return }
        if lingering || !allFlushed {
            // Linger over, or the peer stopped taking our bytes.
            close()
            return
        }
        armedKey = nil
        act(protoTimedOut())
    }

    // MARK: Closing

    /// Shuts down our sending side and discards input briefly so the peer reads the whole
    /// response before it sees a reset.
    private func beginLinger() {
        if lingering { return }
        if tls == nil, let c = conn, c.peerFinishedSending {
            // Nothing more will arrive (the request said `close` and was read whole, or the
            // peer already sent its FIN): close(2) now sends our FIN after the response; no
            // unread input can turn it into a reset. Saves shutdown, a read and a wake-up.
            close()
            return
        }
        if let tls {
            // close_notify first (RFC 8446 §6.1), then the TCP half-close.
            tls.shutdown()
            if !flushCiphertext() { return }
        }
        lingering = true
        if shutdown(fd, Int32(SHUT_WR)) != 0 {
            close()
            return
        }
        setInterest(.read)
        ctx.lingerTimeouts.arm(self, now: Clock.monotonicNanos())
    }

    private func lingerRead() {
        while true {
            input.clear()
            let r: IOResult
            do { r = try Socket.read(fd, into: input, minimumSpace: 4096) } catch { close(); return }
            switch r {
            case .done(0): close(); return
            case .done: continue
            case .wouldBlock: return
            }
        }
    }

    func close() {
        if closed { return }
        closed = true
        disarmTimeout()
        if registered {
            // close(2) drops the fd from the epoll set (nothing else refers to this socket),
            // so only the handler table is cleared: one syscall less per connection.
            ctx.loop.forget(fd: fd)
            registered = false
        }
        Glibc.close(fd)
        ctx.remove(fd)
        protoTransportClosed()
        releaseProtocolIfIdle()
    }

    /// After `101 Switching Protocols` (reverse_proxy's WebSocket tunnel): the socket, the
    /// input after the request head and the unsent 101 head go to `receiver`, which owns the
    /// fd from now on; this driver and its protocol are done (nothing is closed here).
    func http1Connection(_ connection: HTTP1Connection, handOverTo receiver: any UpgradeReceiver) -> Bool {
        // An HTTPS connection hands over its TLS session too (the tunnel encrypts and
        // decrypts from then on).
        guard !closed, !lingering, connection === conn else { return false }
        if let tls, !tls.isEstablished { return false }
        closed = true
        disarmTimeout()
        if registered {
            ctx.loop.deregister(fd: fd)
            registered = false
        }
        ctx.remove(fd)
        let session = tls
        tls = nil
        cipherIn = nil
        cipherOut = nil
        receiver.takeOver(fd: fd, tls: session, fromClient: input.readable, toClient: output.readable)
        input.clear()
        output.clear()
        conn = nil
        return true
    }

    /// `HTTP1Connection` holds its responder (this object) strongly: drop it once closed so the
    /// pair is freed — but not while an asynchronous handler still owns the response.
    private func releaseProtocolIfIdle() {
        if closed, let c = conn, !c.isHandlerPending {
            // Reused for a later socket on this loop when it can be; otherwise dropped.
            if !recycleIntoPool(c) { conn = nil }
        }
        if closed, let c = h2, !c.isHandlerPending {
            h2 = nil
        }
    }

    func drain() {
        if closed { return }
        if let h2 {
            // HTTP/2: GOAWAY (RFC 9113 §6.8); the protocol closes once in-flight streams end.
            draining = true
            act(h2.beginGracefulShutdown().http1)
            return
        }
        // Idle (no request in progress, nothing buffered): close now. Otherwise the protocol
        // closes after the current response because keep-alive is withdrawn.
        if !protoPending && input.isEmpty && allFlushed {
            close()
            return
        }
        draining = true
        if protoPending, !conn.response.headSent { conn.response.closeConnection = true }
    }

    func forceClose() { close() }

    // MARK: Protocol callbacks

    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if ctx.draining { response.closeConnection = true }
        if let a = altSvc { a.withUnsafeBytes { response.fields.append(.altSvc, value: $0) } }
        // ACME HTTP-01 (RFC 8555 §8.3) on every listener, before any site route.
        if let answered = ACMERuntime.answerHTTP01(request, response) { return answered }
        return server.handler.handle(request, response)
    }

    func http1ConnectionNeedsService(_ connection: HTTP1Connection) {
        requestServiceOnce()
    }

    func requestServiceOnce() {
        if serviceRequested { return }
        serviceRequested = true
        ctx.requestService(self)
    }

    func service() {
        serviceRequested = false
        if closed {
            releaseProtocolIfIdle()
            return
        }
        act(protoResume())
    }

    func http1Connection(_ connection: HTTP1Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64) {
        logFinished(request, response, bytesRead)
    }

    func logFinished(_ request: HTTPRequest, _ response: HTTPResponse, _ bytesRead: Int64) {
        guard let policy = server.accessLog, let targets = policy.targets(for: request) else { return }
        request.bodyBytesRead = bytesRead
        ctx.accessLog.log(request: request, response: response, serverHeader: runtime.serverHeader,
                          nowNanos: Clock.monotonicNanos(), targets: targets)
    }
}

// MARK: Protocol-neutral calls (HTTP/1 or HTTP/2 over the same buffers)

extension HTTP2Action {
    /// The driver treats both protocols' actions alike.
    var http1: HTTP1Action {
        switch self {
        case .readMore: return .readMore
        case .flush: return .flush
        case .wait: return .wait
        case .flushAndClose: return .flushAndClose
        case .close: return .close
        }
    }
}

extension HTTP1ServerConnection: HTTP2Responder, HTTP2ConnectionDelegate {
    /// Replaces the HTTP/1 protocol object by HTTP/2 over the same buffers.
    func switchToHTTP2() {
        guard h2 == nil, let old = conn else { return }
        var cfg = HTTP2Configuration()
        cfg.timeouts.preface = .milliseconds(ctx.limits.readHeaderTimeoutMilliseconds)
        cfg.timeouts.idle = .milliseconds(ctx.limits.idleTimeoutMilliseconds)
        cfg.timeouts.readBody = .milliseconds(ctx.limits.readBodyTimeoutMilliseconds)
        cfg.serverName = String(decoding: runtime.serverHeader, as: UTF8.self)
        let c = HTTP2Connection(input: input, output: output, configuration: cfg, dateCache: ctx.dateCache,
                                connectionInfo: old.request.connection, responder: self)
        c.delegate = self
        h2 = c
        conn = nil
        armedKey = nil
    }

    func protoStart() -> HTTP1Action { h2.map { $0.start().http1 } ?? conn.start() }
    func protoReceive() -> HTTP1Action { h2.map { $0.receive().http1 } ?? conn.receive() }
    func protoResume() -> HTTP1Action { h2.map { $0.resume().http1 } ?? conn.resume() }
    func protoPeerClosed() -> HTTP1Action { h2.map { $0.peerClosed().http1 } ?? conn.peerClosedAbortingHandler() }
    func protoTimedOut() -> HTTP1Action { h2.map { $0.timedOut().http1 } ?? conn.timedOut() }
    var protoPending: Bool { h2?.isHandlerPending ?? conn?.isHandlerPending ?? false }
    func protoTransportClosed() {
        if let h2 { h2.transportClosed() } else { conn?.transportClosed() }
    }
    func protoTransportDrained() {
        if h2 == nil { conn?.transportDrained() }
    }

    /// The timer the protocol wants: (list, epoch).
    func protoTimerKey() -> (UInt8, UInt64)? {
        if let h2 {
            guard let t = h2.timeout else { return nil }
            switch t.kind {
            case .preface: return (0, t.epoch)
            case .idle: return (1, t.epoch)
            case .readBody: return (2, t.epoch)
            }
        }
        guard let t = conn?.timeout else { return nil }
        switch t.kind {
        case .readHeader: return (0, t.epoch)
        case .idle: return (1, t.epoch)
        case .readBody: return (2, t.epoch)
        }
    }

    func http2ConnectionNeedsService(_ connection: HTTP2Connection) {
        requestServiceOnce()
    }

    func http2Connection(_ connection: HTTP2Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64) {
        logFinished(request, response, bytesRead)
    }
}

extension HTTP1ServerConnection: TLSLocalAddressSource {
    /// The socket's local IP, for a TLS client that sent no SNI (`https://127.0.0.1/`).
    func tlsLocalAddress() -> String? { Socket.localAddress(fd)?.ipString }
}
