#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP1
import HTTPCore
import IOCore
import TLS

/// Creates plain-TCP HTTP/1 connections.
package struct HTTP1ConnectionFactory: ConnectionFactory {
    package init() {}

    package func makeConnection(fd: Int32, peer: SocketAddress?, listener: ServedListener, server: RuntimeServer,
                                runtime: ServerRuntime, context: LoopContext) {
        // Responses are written whole in one write(); Nagle would only delay the last segment.
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let tls = server.tlsContexts?[listener.protocols]
        let c = HTTP1ServerConnection(fd: fd, peer: peer, server: server, runtime: runtime, context: context, tls: tls)
        c.start()
    }
}

/// Drives one HTTP/1 connection on one loop: socket reads and writes, epoll interest, timers,
/// backpressure. The protocol itself is `HTTP1Connection` (sans-I/O).
final class HTTP1ServerConnection: TimeoutNode, EventHandler, ManagedConnection, HTTP1ConnectionDelegate,
    HTTP1Responder, ServiceRequester, HTTP1TransportDelegate
{
    let fd: Int32
    unowned let ctx: LoopContext
    let server: RuntimeServer
    /// Keeps the runtime (handler tree) alive while the connection uses it.
    let runtime: ServerRuntime
    let input = ByteBuffer(capacity: 4096)
    let output = ByteBuffer(capacity: 4096)
    var conn: HTTP1Connection!
    private var armed: HTTP1Timeout?
    private var interest: Interest = .read
    private var registered = false
    private var closed = false
    private var lingering = false
    private var lastAction: HTTP1Action = .readMore
    private var serviceRequested = false
    /// Shutdown or reload asked this connection to finish its current request and close.
    private var draining = false
    /// TLS layer on HTTPS listeners: socket bytes go through `cipherIn`/`cipherOut`, and the
    /// protocol sees plaintext in `input`/`output` exactly as on plain HTTP.
    private var tls: TLSConnection?
    private var cipherIn: ByteBuffer?
    private var cipherOut: ByteBuffer?
    /// True when nothing is waiting to be written (plaintext or ciphertext).
    private var allFlushed: Bool { output.isEmpty && (cipherOut?.isEmpty ?? true) }

    init(fd: Int32, peer: SocketAddress?, server: RuntimeServer, runtime: ServerRuntime, context: LoopContext,
         tls tlsContext: TLSContext? = nil) {
        self.fd = fd
        self.ctx = context
        self.server = server
        self.runtime = runtime
        super.init()
        let info = ConnectionInfo(remote: peer, local: nil, isTLS: tlsContext != nil)
        if let tlsContext {
            let cin = ByteBuffer(capacity: 16 * 1024 + 512)
            let cout = ByteBuffer(capacity: 16 * 1024 + 512)
            cipherIn = cin
            cipherOut = cout
            tls = try? TLSConnection(server: tlsContext, input: cin, output: cout, localAddress: Socket.localAddress(fd)?.ipString)
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
        act(conn.start())
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
                    if !conn.isHandlerPending { act(conn.resume()) } else { setInterest([]) }
                case .flush, .readMore:
                    if draining && !conn.isHandlerPending {
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
            r = try Socket.read(fd, into: input, minimumSpace: 2048)
        } catch {
            close()
            return
        }
        switch r {
        case .done(0):
            act(conn.peerClosedAbortingHandler())
        case .done:
            act(conn.receive())
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
            act(conn.peerClosedAbortingHandler())
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
                act(conn.peerClosedAbortingHandler())
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
            act(conn.receive())
            guard tls.hasPendingPlaintext, lastAction == .readMore || lastAction == .flush else { return }
        }
    }

    private func handshakeCompleted(_ tls: TLSConnection) {
        guard let info = tls.info else { return }
        conn.request.connection.serverName = info.serverName
        conn.request.connection.tlsVersion = info.version
        conn.request.connection.tlsCipherSuite = info.cipherSuite
        conn.request.connection.tlsResumed = info.resumed
        conn.request.connection.tlsProtocol = info.applicationProtocol
    }

    /// Writes `cipherOut`; false when the connection was closed by an error.
    private func flushCiphertext() -> Bool {
        guard let cipherOut else { return true }
        while !cipherOut.isEmpty {
            do {
                let r = try Socket.write(fd, from: cipherOut)
                if case .wouldBlock = r { return true }
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
            if draining && allFlushed && !conn.isHandlerPending {
                beginLinger()
                return
            }
            setInterest(allFlushed ? .read : [.read, .write])
        case .wait:
            guard flush() else { return }
            if allFlushed {
                if !conn.isHandlerPending {
                    act(conn.resume())
                    return
                }
                setInterest([])
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
            // h2c prior knowledge is not served by this build: close quietly, as Caddy does on
            // an h1-only listener.
            close()
            return
        }
        updateTimer()
    }

    /// Writes pending output; false when the connection was closed by an error.
    @inline(__always)
    private func flush() -> Bool {
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
            return flushCiphertext()
        }
        while !output.isEmpty {
            do {
                let r = try Socket.write(fd, from: output)
                if case .wouldBlock = r { return true }
            } catch {
                close()
                return false
            }
        }
        output.compact()
        conn?.transportDrained()
        return true
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
            if currentTimeoutList !== ctx.writeTimeouts { ctx.writeTimeouts.arm(self, now: Clock.monotonicNanos()) }
            armed = nil
            return
        }
        let t = conn.timeout
        if t == armed && currentTimeoutList != nil { return }
        armed = t
        guard let t else {
            disarmTimeout()
            return
        }
        let list: TimeoutList
        switch t.kind {
        case .readHeader: list = ctx.headerTimeouts
        case .idle: list = ctx.idleTimeouts
        case .readBody: list = ctx.bodyTimeouts
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
        armed = nil
        act(conn.timedOut())
    }

    // MARK: Closing

    /// Shuts down our sending side and discards input briefly so the peer reads the whole
    /// response before it sees a reset.
    private func beginLinger() {
        if lingering { return }
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
            ctx.loop.deregister(fd: fd)
            registered = false
        }
        Glibc.close(fd)
        ctx.remove(fd)
        conn?.transportClosed()
        releaseProtocolIfIdle()
    }

    /// After `101 Switching Protocols` (reverse_proxy's WebSocket tunnel): the socket, the
    /// input after the request head and the unsent 101 head go to `receiver`, which owns the
    /// fd from now on; this driver and its protocol are done (nothing is closed here).
    func http1Connection(_ connection: HTTP1Connection, handOverTo receiver: any UpgradeReceiver) -> Bool {
        // A TLS connection cannot hand its raw socket to a tunnel: the bytes are encrypted.
        guard !closed, !lingering, connection === conn, tls == nil else { return false }
        closed = true
        disarmTimeout()
        if registered {
            ctx.loop.deregister(fd: fd)
            registered = false
        }
        ctx.remove(fd)
        receiver.takeOver(fd: fd, fromClient: input.readable, toClient: output.readable)
        input.clear()
        output.clear()
        conn = nil
        return true
    }

    /// `HTTP1Connection` holds its responder (this object) strongly: drop it once closed so the
    /// pair is freed — but not while an asynchronous handler still owns the response.
    private func releaseProtocolIfIdle() {
        if closed, let c = conn, !c.isHandlerPending {
            conn = nil
        }
    }

    func drain() {
        if closed { return }
        // Idle (no request in progress, nothing buffered): close now. Otherwise the protocol
        // closes after the current response because keep-alive is withdrawn.
        if !conn.isHandlerPending && input.isEmpty && allFlushed {
            close()
            return
        }
        draining = true
        if conn.isHandlerPending, !conn.response.headSent { conn.response.closeConnection = true }
    }

    func forceClose() { close() }

    // MARK: Protocol callbacks

    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if ctx.draining { response.closeConnection = true }
        return server.handler.handle(request, response)
    }

    func http1ConnectionNeedsService(_ connection: HTTP1Connection) {
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
        act(conn.resume())
    }

    func http1Connection(_ connection: HTTP1Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64) {
        guard let policy = server.accessLog, policy.shouldLog(request) else { return }
        request.bodyBytesRead = bytesRead
        ctx.accessLog.log(request: request, response: response, serverHeader: runtime.serverHeader,
                          nowNanos: Clock.monotonicNanos())
    }
}
