#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP1
import HTTPCore
import IOCore

/// Creates plain-TCP HTTP/1 connections.
package struct HTTP1ConnectionFactory: ConnectionFactory {
    package init() {}

    package func makeConnection(fd: Int32, peer: SocketAddress?, listener: ServedListener, server: RuntimeServer,
                                runtime: ServerRuntime, context: LoopContext) {
        // Responses are written whole in one write(); Nagle would only delay the last segment.
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let c = HTTP1ServerConnection(fd: fd, peer: peer, server: server, runtime: runtime, context: context)
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

    init(fd: Int32, peer: SocketAddress?, server: RuntimeServer, runtime: ServerRuntime, context: LoopContext) {
        self.fd = fd
        self.ctx = context
        self.server = server
        self.runtime = runtime
        super.init()
        var info = ConnectionInfo(remote: peer, local: nil, isTLS: false)
        info.local = nil
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
            if output.isEmpty {
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

    /// Applies an action from the protocol.
    private func act(_ action: HTTP1Action) {
        lastAction = action
        switch action {
        case .readMore, .flush:
            if !output.isEmpty { guard flush() else { return } }
            if draining && output.isEmpty && !conn.isHandlerPending {
                beginLinger()
                return
            }
            setInterest(output.isEmpty ? .read : [.read, .write])
        case .wait:
            guard flush() else { return }
            if output.isEmpty {
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
            if output.isEmpty {
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
        if !output.isEmpty {
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
        if lingering || !output.isEmpty {
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
        guard !closed, !lingering, connection === conn else { return false }
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
        if !conn.isHandlerPending && input.isEmpty && output.isEmpty {
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
