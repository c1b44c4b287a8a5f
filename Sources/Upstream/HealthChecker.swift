import EventLoop
import HTTPCore
import IOCore

/// Active health checks (`health_uri`, `health_port`, `health_interval`, `health_timeout`,
/// `health_status`, `health_body`, `health_headers`; Caddy's `healthchecks.go`): every
/// interval each upstream gets `GET <uri>` on a fresh connection; a response with the
/// expected status (any 2xx by default) and a matching body within the timeout marks it
/// healthy, anything else unhealthy. Runs on the loop that served the proxy's first request,
/// and stops once the configuration is unloaded (it holds the proxy weakly).
final class HealthChecker {
    weak var proxy: ReverseProxy?
    unowned let uloop: UpstreamLoop

    private init(_ p: ReverseProxy, _ ul: UpstreamLoop) {
        proxy = p
        uloop = ul
    }

    /// The checker lives in its own timer closures: each tick schedules the next.
    static func start(_ p: ReverseProxy, on ul: UpstreamLoop) {
        let c = HealthChecker(p, ul)
        ul.loop.schedule(afterMilliseconds: 0) { c.tick() }
    }

    private func tick() {
        guard let p = proxy else { return }
        let h = p.configuration.health
        for host in p.hosts {
            let probe = HealthProbe(host: host, options: h, transport: p.configuration.transport, tls: p.configuration.tls, uloop: uloop)
            probe.run()
        }
        uloop.loop.schedule(afterMilliseconds: max(100, h.intervalMilliseconds)) { [self] in tick() }
    }
}

/// One health request to one upstream.
final class HealthProbe: UpstreamConnectionDelegate {
    let host: UpstreamHost
    let options: HealthOptions
    let transport: TransportOptions
    let tls: UpstreamTLS?
    unowned let uloop: UpstreamLoop
    private var conn: UpstreamConnection?
    private var parser = ResponseHeadParser()
    private var fields = HTTPFields()
    private var decoder = ResponseBodyDecoder()
    private var body: [UInt8] = []
    private var headDone = false
    private var done = false
    private var timer: TimerID?
    private var selfRetain: HealthProbe?

    init(host: UpstreamHost, options: HealthOptions, transport: TransportOptions, tls: UpstreamTLS?, uloop: UpstreamLoop) {
        self.host = host
        self.tls = tls
        self.options = options
        self.transport = transport
        self.uloop = uloop
    }

    func run() {
        selfRetain = self
        var t = transport
        t.keepAlive = false
        let pool = HostPool(host: host, transport: t, tls: tls, loop: uloop)
        let c = pool.makeConnection()
        conn = c
        c.delegate = self
        timer = uloop.loop.schedule(afterMilliseconds: options.timeoutMilliseconds) { [weak self] in
            self?.finish(healthy: false)
        }
        let port = options.port
        switch host.address.endpoint {
        case .unix(let path):
            c.dial([.unix(path: path)])
        case .tcp(let name, let p):
            let target = port ?? p
            if let ip = SocketAddress(ip: name, port: target) {
                c.dial([ip])
            } else {
                let me = LoopBound(self)
                Resolver.shared.resolve(host: name, port: target, on: uloop.loop) { r in
                    switch r {
                    case .success(let a): me.value.conn?.dial(a)
                    case .failure: me.value.finish(healthy: false)
                    }
                }
            }
        }
    }

    func upstreamConnected(_ c: UpstreamConnection) {
        let out = c.output
        out.append("GET ")
        out.append(string: options.uri ?? "/")
        out.append(" HTTP/1.1\r\nHost: ")
        var hostValue = host.address.hostport
        if case .tcp(let name, let p) = host.address.endpoint, let hp = options.port, hp != p {
            hostValue = name.contains(":") ? "[\(name)]:\(hp)" : "\(name):\(hp)"
        }
        out.append(string: hostValue)
        out.append("\r\nUser-Agent: Berth-health-check\r\nConnection: close\r\n")
        for (n, v) in options.headers {
            out.append(string: n)
            out.append(": ")
            out.append(string: v)
            out.append("\r\n")
        }
        out.append("\r\n")
        c.flushQueued()
    }

    func upstreamReadable(_ c: UpstreamConnection) {
        if !headDone {
            switch parser.parse(c.input, into: &fields) {
            case .needMore:
                if c.peerEOF { finish(healthy: false) }
                return
            case .failure:
                finish(healthy: false)
                return
            case .complete:
                if parser.status < 200 {
                    parser.reset()
                    fields.removeAll()
                    upstreamReadable(c)
                    return
                }
                headDone = true
                guard statusOK(parser.status) else {
                    finish(healthy: false)
                    return
                }
                if options.bodyMatcher == nil {
                    finish(healthy: true)
                    return
                }
                decoder.start(parser.framing(isHEAD: false))
            }
        }
        while true {
            switch decoder.next(c.input) {
            case .data(let n):
                if body.count < 1 << 20 { body.append(contentsOf: UnsafeRawBufferPointer(start: c.input.base + c.input.readerIndex, count: n)) }
                c.input.consume(n)
            case .needMore:
                if c.peerEOF {
                    decoder.finishAtEOF()
                    continue
                }
                return
            case .done:
                finish(healthy: options.bodyMatcher?(body) ?? true)
                return
            case .failure:
                finish(healthy: false)
                return
            }
        }
    }

    private func statusOK(_ s: Int) -> Bool {
        guard let want = options.expectStatus else { return (200..<300).contains(s) }
        return want < 10 ? s / 100 == want : s == want
    }

    func upstreamWritable(_ c: UpstreamConnection) {}

    func upstreamFailed(_ c: UpstreamConnection, _ error: UpstreamError) {
        conn = nil
        finish(healthy: false)
    }

    private func finish(healthy: Bool) {
        if done { return }
        done = true
        if let t = timer { uloop.loop.cancel(t) }
        conn?.close()
        conn = nil
        host.activeUnhealthy.store(!healthy, ordering: .relaxed)
        selfRetain = nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
