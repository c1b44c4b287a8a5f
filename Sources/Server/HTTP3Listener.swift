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
/// listener), on one loop: datagrams in with `recvmmsg`, through the `QUICEndpoint`, packets
/// out with GSO; one timerfd for every connection's deadline. It is a `ManagedConnection` of
/// its loop, so shutdown drains it (GOAWAY on every connection, RFC 9114 §5.2) and the grace
/// period closes it.
final class HTTP3Listener: EventHandler, ManagedConnection, ServiceRequester, QUICEndpointDelegate {
    let fd: Int32
    let displayName: String
    unowned(unsafe) let ctx: LoopContext
    let endpoint: QUICEndpoint
    private let batch = UDPReceiveBatch()
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
    private var cached: (store: CertificateStore, credentials: QUICTLSCredentials)?

    init(fd: Int32, displayName: String, server: RuntimeServer, runtime: ServerRuntime, context: LoopContext) throws(IOError) {
        self.fd = fd
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
        if limits.maxConnections > 0 { cfg.limits.maxConnections = limits.maxConnections }
        cfg.serverName = String(decoding: runtime.serverHeader, as: UTF8.self)
        cfg.staticSecret = HTTP3Runtime.staticSecret()
        cfg.debugLog = getenv("BERTH_QUIC_DEBUG") != nil
        endpoint = QUICEndpoint(configuration: cfg, dateCache: context.dateCache)
        exchange = HTTP3Exchange(server: server, runtime: runtime, context: context)
        certificates = server.certificates
        endpoint.delegate = self
        timer.owner = self
    }

    deinit {
        if !stopped { close(timerFD) }
        bound.deallocate()
    }

    /// Starts receiving on the loop (loop thread).
    func start() throws(IOError) {
        try ctx.loop.register(fd: fd, interest: .read, handler: self)
        do {
            try ctx.loop.register(fd: timerFD, interest: .read, handler: timer)
        } catch {
            ctx.loop.deregister(fd: fd)
            throw error
        }
        ctx.add(fd, self)
        Log.info("http", "enabling HTTP/3 listener", [("addr", .string(displayName))])
    }

    /// A reload: new connections use `server`'s handlers and certificates.
    func update(server: RuntimeServer, runtime: ServerRuntime) {
        exchange = HTTP3Exchange(server: server, runtime: runtime, context: ctx)
        certificates = server.certificates
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
            for i in 0..<n {
                batch.withDatagram(i) { payload, remote, remoteLength, local, localLength, ecn in
                    if localLength > 0 {
                        endpoint.receive(payload, remote: remote, remoteLength: remoteLength, local: local,
                                         localLength: localLength, ecn: ecn, now: now)
                    } else {
                        endpoint.receive(payload, remote: remote, remoteLength: remoteLength, local: UnsafeRawPointer(bound),
                                         localLength: boundLength, ecn: ecn, now: now)
                    }
                }
            }
            endpoint.flush()
            if n < batch.count { break }
            rounds += 1
        }
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
        if let c = cached, c.store === store { return QUICAcceptance(responder: exchange, credentials: c.credentials) }
        do {
            let creds = try HTTP3Runtime.credentials(for: store)
            cached = (store, creds)
            return QUICAcceptance(responder: exchange, credentials: creds)
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
        close(timerFD)
        ctx.remove(fd)
    }
}

/// The timerfd's epoll registration.
private final class TimerEvents: EventHandler {
    weak var owner: HTTP3Listener?
    func handleEvents(_ events: UInt32) { owner?.timerFired() }
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
