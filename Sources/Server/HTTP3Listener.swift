#if canImport(Glibc)
import Glibc
#endif
import CLinux
import EventLoop
import HTTP3
import HTTPCore
import IOCore
import TLS

/// Serves HTTP/3 on one UDP socket (inherited `fdgram/N`, or bound by Berth next to a TCP
/// listener) on one loop — every loop has one per socket (see `HTTP3SocketGroup`):
/// datagrams in with `recvmmsg`, those of this loop's connections through its
/// `QUICEndpoint` and the others to their loop's inbox; packets out with GSO; one timerfd for
/// every connection's deadline. It is a `ManagedConnection` of its loop, so shutdown drains
/// it (GOAWAY on every connection, RFC 9114 §5.2) and the grace period closes it.
final class HTTP3Listener: EventHandler, ManagedConnection, ServiceRequester, QUICEndpointDelegate {
    let fd: Int32
    let displayName: String
    unowned(unsafe) let ctx: LoopContext
    let endpoint: QUICEndpoint
    private let batch = UDPReceiveBatch()
    /// The loops sharing the socket, and this one's index among them.
    let group: HTTP3SocketGroup
    private let index: Int
    private let inboxEvents: InboxEvents
    /// Per loop: the batch being filled for it during one receive round.
    private var staging: [UDPReceiveBatch?]
    private var received: [UDPReceiveBatch] = []
    private let localPort: Int
    /// The socket's own address, for datagrams that came without IP_PKTINFO.
    private let bound: UnsafeMutablePointer<sockaddr_storage>
    private var boundLength = 0
    private var gso: Bool
    private let timerFD: Int32
    private let timer: TimerEvents
    private var armed: UInt64 = 0
    private var serviceRequested = false
    private var draining = false
    private(set) var stopped = false
    /// What new connections are served with (replaced on reload; old connections keep theirs).
    private var exchange: HTTP3Exchange
    private var certificates: CertificateSource?
    private var clientAuth: HTTP3ClientAuth?
    private var cached: (store: CertificateStore, credentials: QUICTLSCredentials)?

    /// Below this receive buffer Berth warns at start (quic-go warns below 7 MB; 1 MiB holds
    /// ~700 full-size datagrams).
    static let wantedReceiveBuffer = 1 << 20

    init(fd: Int32, displayName: String, server: RuntimeServer, runtime: ServerRuntime, context: LoopContext,
         group: HTTP3SocketGroup, index: Int) throws(IOError) {
        self.fd = fd
        self.group = group
        self.index = index
        inboxEvents = InboxEvents()
        staging = Array(repeating: nil, count: group.steering.count)
        self.displayName = displayName
        ctx = context
        try UDPSocket.configure(fd)
        localPort = Socket.localAddress(fd)?.port ?? 0
        bound = .allocate(capacity: 1)
        bound.initialize(to: sockaddr_storage())
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        if bound.withMemoryRebound(to: sockaddr.self, capacity: 1, { getsockname(fd, $0, &len) }) == 0 {
            boundLength = Int(len)
        }
        gso = UDPSocket.supportsGSO(fd)
        let t = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        if t < 0 {
            bound.deallocate()
            throw IOError("timerfd_create", errno: errno)
        }
        timerFD = t
        timer = TimerEvents()
        var cfg = HTTP3Configuration()
        let limits = context.limits
        cfg.timeouts.idle = .milliseconds(limits.idleTimeoutMilliseconds)
        cfg.timeouts.handshake = .milliseconds(limits.readHeaderTimeoutMilliseconds)
        cfg.timeouts.readBody = .milliseconds(limits.readBodyTimeoutMilliseconds)
        cfg.settings.maxFieldSectionSize = limits.maxHeaderBytes
        cfg.limits.requireRetry = limits.quicRequireRetry
        // Each loop's endpoint takes its share of the limit (connections spread evenly).
        if limits.maxConnections > 0 {
            let n = group.steering.count
            cfg.limits.maxConnections = max(1, (limits.maxConnections + n - 1) / n)
        }
        cfg.serverName = String(decoding: runtime.serverHeader, as: UTF8.self)
        cfg.staticSecret = HTTP3Runtime.staticSecret()
        cfg.debugLog = getenv("BERTH_QUIC_DEBUG") != nil
        endpoint = QUICEndpoint(configuration: cfg, dateCache: context.dateCache, steering: group.steering, index: index)
        exchange = HTTP3Exchange(server: server, runtime: runtime, context: context)
        certificates = server.certificates
        clientAuth = server.quicClientAuth
        endpoint.delegate = self
        timer.owner = self
        inboxEvents.owner = self
    }

    deinit {
        if !stopped { close(timerFD) }
        bound.deallocate()
    }

    /// Starts receiving on the loop (loop thread).
    func start() throws(IOError) {
        // Several loops on one socket: EPOLLEXCLUSIVE wakes one of them per readiness.
        try ctx.loop.register(fd: fd, interest: group.steering.count > 1 ? Interest.acceptable.union(.exclusive) : .read,
                              handler: self)
        do {
            try ctx.loop.register(fd: timerFD, interest: .read, handler: timer)
        } catch {
            ctx.loop.deregister(fd: fd)
            throw error
        }
        do {
            try ctx.loop.register(fd: group.inboxes[index].eventFD, interest: .read, handler: inboxEvents)
        } catch {
            ctx.loop.deregister(fd: fd)
            ctx.loop.deregister(fd: timerFD)
            throw error
        }
        ctx.add(fd, self)
        if index == 0 {
            Log.info("http", "enabling HTTP/3 listener", [("addr", .string(displayName)), ("loops", .int(group.steering.count))])
            // A small receive buffer drops bursts of datagrams (QUIC then retransmits and
            // slows down). Berth raises it as far as it may, never lowers an inherited one;
            // beyond net.core.rmem_max it needs the socket unit's ReceiveBuffer=.
            if let b = UDPSocket.receiveBufferBytes(fd), b < HTTP3Listener.wantedReceiveBuffer {
                Log.warn("http", "the UDP receive buffer is small for HTTP/3; set ReceiveBuffer=4M in the socket unit (or raise net.core.rmem_max)",
                         [("addr", .string(displayName)), ("receive_buffer_bytes", .int(b)),
                          ("wanted_bytes", .int(HTTP3Listener.wantedReceiveBuffer))])
            }
        }
    }

    /// A reload: new connections use `server`'s handlers and certificates.
    func update(server: RuntimeServer, runtime: ServerRuntime) {
        exchange = HTTP3Exchange(server: server, runtime: runtime, context: ctx)
        certificates = server.certificates
        clientAuth = server.quicClientAuth
        cached = nil
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        if stopped { return }
        var rounds = 0
        while rounds < 16 {
            let n: Int
            do { n = try batch.receive(fd, localPort: localPort) } catch { break }
            if n == 0 { break }
            let now = Clock.monotonicNanos()
            let steering = group.steering
            var forwarded = false
            for i in 0..<n {
                if steering.count > 1 {
                    let owner = steering.owner(of: batch.payload(i), fallback: index)
                    if owner != index {
                        forward(i, to: owner)
                        forwarded = true
                        continue
                    }
                }
                deliver(batch, i, now: now)
            }
            if forwarded { postForwarded() }
            endpoint.flush()
            if n < batch.count { break }
            rounds += 1
        }
        afterWork()
    }

    @inline(__always)
    private func deliver(_ b: UDPReceiveBatch, _ i: Int, now: UInt64) {
        b.withDatagram(i) { payload, remote, remoteLength, local, localLength, ecn in
            if localLength > 0 {
                endpoint.receive(payload, remote: remote, remoteLength: remoteLength, local: local,
                                 localLength: localLength, ecn: ecn, now: now)
            } else {
                endpoint.receive(payload, remote: remote, remoteLength: remoteLength, local: UnsafeRawPointer(bound),
                                 localLength: boundLength, ecn: ecn, now: now)
            }
        }
    }

    /// Copies datagram `i` into the batch for loop `owner`.
    private func forward(_ i: Int, to owner: Int) {
        if let b = staging[owner], b.appendCopy(i, from: batch) { return }
        if let full = staging[owner] { group.inboxes[owner].post(full) }
        let b = group.inboxes[owner].takeFree()
        _ = b.appendCopy(i, from: batch)
        staging[owner] = b
    }

    /// Hands this round's forwarded datagrams to their loops.
    private func postForwarded() {
        for t in staging.indices {
            if let b = staging[t] {
                staging[t] = nil
                group.inboxes[t].post(b)
            }
        }
    }

    /// Datagrams other loops read for this loop's connections.
    fileprivate func inboxReady() {
        if stopped { return }
        let inbox = group.inboxes[index]
        inbox.take(into: &received)
        if received.isEmpty { return }
        let now = Clock.monotonicNanos()
        for b in received {
            for i in 0..<b.filled { deliver(b, i, now: now) }
        }
        inbox.recycle(received)
        received.removeAll(keepingCapacity: true)
        endpoint.flush()
        afterWork()
    }

    fileprivate func timerFired() {
        if stopped { return }
        var expirations: UInt64 = 0
        _ = read(timerFD, &expirations, 8)
        armed = 0
        endpoint.handleTimers(now: Clock.monotonicNanos())
        afterWork()
    }

    /// Rearms the timerfd for the earliest connection deadline; finishes a drain.
    private func afterWork() {
        if stopped { return }
        // Rearm only when the deadline moved earlier (or nothing is armed): a timer that fires
        // early finds nothing due and rearms, which costs less than a timerfd_settime per batch.
        if let d = endpoint.nextDeadline, armed == 0 || d < armed {
            armed = d
            _ = berth_timerfd_set_abs(timerFD, d)
        }
        if draining && endpoint.connectionCount == 0 && endpoint.lingeringCount == 0 { stop() }
    }

    // MARK: ServiceRequester

    func service() {
        serviceRequested = false
        if stopped { return }
        endpoint.service()
        afterWork()
    }

    // MARK: QUICEndpointDelegate

    func quicEndpoint(send bytes: UnsafeRawBufferPointer, segmentSize: Int, to remote: UnsafeRawPointer,
                      remoteLength: Int, from local: UnsafeRawPointer?, localLength: Int, ecn: UInt32) -> Bool {
        UDPSocket.send(fd, bytes, segmentSize: segmentSize, gso: &gso, to: remote, remoteLength: remoteLength,
                       from: local, localLength: localLength, ecn: ecn)
    }

    func quicEndpointNeedsService(_ endpoint: QUICEndpoint) {
        if serviceRequested || stopped { return }
        serviceRequested = true
        ctx.requestService(self)
    }

    func quicEndpointAccept(_ endpoint: QUICEndpoint) -> QUICAcceptance? {
        if draining { return nil }
        guard let source = certificates else { return nil }
        let store = source.current
        if let c = cached, c.store === store { return QUICAcceptance(responder: exchange, credentials: c.credentials, clientAuth: clientAuth) }
        do {
            let creds = try HTTP3Runtime.credentials(for: store)
            cached = (store, creds)
            return QUICAcceptance(responder: exchange, credentials: creds, clientAuth: clientAuth)
        } catch {
            Log.error("http.quic", "loading certificates into GnuTLS failed", [("error", .string("\(error)"))])
            return nil
        }
    }

    // MARK: ManagedConnection

    /// Graceful shutdown: GOAWAY everywhere, new connections refused; stops once empty.
    func drain() {
        if stopped { return }
        draining = true
        endpoint.beginGracefulShutdown()
        afterWork()
    }

    /// The grace period is over (or the listener left the config): close everything now.
    func forceClose() {
        if stopped { return }
        endpoint.closeAll()
        stop()
    }

    /// Stops serving: deregisters the socket and the timer. The socket itself is closed by
    /// whoever owns it (never, for an inherited one).
    func stop() {
        if stopped { return }
        stopped = true
        ctx.loop.deregister(fd: fd)
        ctx.loop.deregister(fd: timerFD)
        ctx.loop.deregister(fd: group.inboxes[index].eventFD)
        close(timerFD)
        ctx.remove(fd)
    }
}

/// The timerfd's epoll registration.
private final class TimerEvents: EventHandler {
    weak var owner: HTTP3Listener?
    func handleEvents(_ events: UInt32) { owner?.timerFired() }
}

/// The inbox eventfd's epoll registration.
private final class InboxEvents: EventHandler {
    weak var owner: HTTP3Listener?
    func handleEvents(_ events: UInt32) { owner?.inboxReady() }
}

/// Requests over HTTP/3 go to the server's handler tree; finished exchanges to its access log.
final class HTTP3Exchange: HTTP3Responder {
    let server: RuntimeServer
    /// Keeps the handler tree alive while connections use it.
    let runtime: ServerRuntime
    unowned(unsafe) let ctx: LoopContext

    init(server: RuntimeServer, runtime: ServerRuntime, context: LoopContext) {
        self.server = server
        self.runtime = runtime
        ctx = context
    }

    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        server.handler.handle(request, response)
    }

    func finished(_ request: HTTPRequest, _ response: HTTPResponse, bytesRead: Int64) {
        guard let policy = server.accessLog, let targets = policy.targets(for: request) else { return }
        request.bodyBytesRead = bytesRead
        ctx.accessLog.log(request: request, response: response, serverHeader: runtime.serverHeader,
                          nowNanos: Clock.monotonicNanos(), targets: targets)
    }
}
