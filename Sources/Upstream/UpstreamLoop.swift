#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import IOCore

/// Why an exchange with an upstream failed, and so which status the client gets
/// (caddy-behavior §12: dial errors 502, timeouts 504, no healthy upstream 503).
package enum UpstreamError: Error, Equatable, Sendable {
    /// Name resolution failed.
    case resolve(String)
    /// connect(2) failed (refused, unreachable…).
    case connect(Int32)
    /// The dial did not complete within `dial_timeout`.
    case dialTimeout
    /// No response head within `response_header_timeout`.
    case responseHeaderTimeout
    /// `read_timeout` / `write_timeout` passed without progress.
    case ioTimeout
    /// The socket failed (reset, broken pipe).
    case io(Int32)
    /// The upstream closed before the response was complete.
    case closed
    /// The response could not be parsed.
    case protocolError(ResponseParseError)
    /// No upstream is available (all unhealthy or at their connection limit).
    case noUpstream
    /// The TLS handshake with the upstream failed (certificate verification, protocol) or
    /// its TLS stream broke; the text says why (it is logged).
    case tls(String)
    /// A FastCGI application sent records that cannot be read.
    case fastcgi(FastCGIError)

    /// The status Caddy answers with.
    package var status: Int {
        switch self {
        case .dialTimeout, .responseHeaderTimeout, .ioTimeout: return 504
        case .noUpstream: return 503
        default: return 502
        }
    }

    /// True for failures before the connection was established (always safe to retry).
    package var isDialError: Bool {
        switch self {
        case .resolve, .connect, .dialTimeout: return true
        default: return false
        }
    }
}

/// Per-event-loop state of the upstream client: timeout lists by duration (shared by every
/// pool on the loop and across reloads), the connection pools by host slot, and free
/// exchange objects. Reached through a thread-local, so it is only ever touched by its loop.
package final class UpstreamLoop {
    package unowned let loop: EventLoop
    private var lists: [Int: TimeoutList] = [:]
    /// Pools indexed by `UpstreamHost.slot`.
    var pools: [HostPool?] = []
    /// Recycled per-request objects.
    var freeExchanges: [ProxyExchange] = []
    /// Open WebSocket / Upgrade tunnels of this loop.
    let tunnels = Tunnel.Registry()
    /// Random numbers for load balancing.
    package let rng = FastRandom(seed: UInt64.random(in: 1...UInt64.max))

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// The state of `loop`, which must be the calling thread's loop.
    package static func of(_ loop: EventLoop) -> UpstreamLoop {
        if let p = pthread_getspecific(key) {
            let u = Unmanaged<UpstreamLoop>.fromOpaque(p).takeUnretainedValue()
            if u.loop === loop { return u }
            // Free exchanges hold their loop state strongly: let this one go.
            u.freeExchanges.removeAll()
            Unmanaged<UpstreamLoop>.fromOpaque(p).release()
        }
        let u = UpstreamLoop(loop: loop)
        pthread_setspecific(key, Unmanaged.passRetained(u).toOpaque())
        return u
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The loop's timeout list for `milliseconds` (created once per distinct duration).
    package func timeoutList(milliseconds: Int) -> TimeoutList {
        if let l = lists[milliseconds] { return l }
        let l = loop.makeTimeoutList(milliseconds: milliseconds)
        lists[milliseconds] = l
        return l
    }

    /// The pool for `host` on this loop.
    func pool(for host: UpstreamHost, proxy: ReverseProxy) -> HostPool {
        let slot = host.slot
        if slot < pools.count, let p = pools[slot] { return p }
        if slot >= pools.count { pools.append(contentsOf: repeatElement(nil, count: slot + 1 - pools.count)) }
        let p = HostPool(host: host, transport: proxy.configuration.transport, tls: proxy.configuration.tls, loop: self)
        pools[slot] = p
        return p
    }

    /// Drops the pool of a host whose configuration is gone (its last connection closed).
    func forget(_ pool: HostPool) {
        let slot = pool.slot
        if slot < pools.count, pools[slot] === pool { pools[slot] = nil }
    }
}
