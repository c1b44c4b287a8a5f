import EventLoop
import HTTPCore
import IOCore
import Synchronization

/// Lets a non-Sendable loop-confined object ride in a `@Sendable` closure that is known to run
/// on the same loop (`EventLoop.execute` from the resolver).
struct LoopBound<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// The `reverse_proxy` engine of one configured directive: the upstreams (shared by all
/// loops), the load balancer, the health checks. `handle` runs on the client connection's
/// loop and returns `.pending`; the exchange completes the response later on that loop.
package final class ReverseProxy: Sendable {
    package let configuration: ProxyConfiguration
    package let hosts: [UpstreamHost]
    package let balancer: LoadBalancer
    private let healthStarted = Atomic<Bool>(false)
    /// No `header_up` and no `trusted_proxies`: the request head goes out through
    /// `RequestHead.encodeDirect` (decided once: passing the configuration struct to a
    /// function copies it, retaining each of its arrays and closures).
    let directRequestHead: Bool
    /// Passive checks with `unhealthy_latency`: the response head's latency is measured.
    let measuresHeadLatency: Bool
    /// `forward_auth` (`configuration.subrequest` is set), decided once.
    let hasSubrequest: Bool
    /// `transport fastcgi` (decided once, as `hasSubrequest`).
    let isFastCGI: Bool
    /// `viaName` followed by CRLF, CR/LF/NUL made SP: the end of the `Via` line (built once).
    let viaNameLine: [UInt8]

    package init(_ c: ProxyConfiguration) {
        configuration = c
        directRequestHead = RequestHead.canEncodeDirectly(c)
        measuresHeadLatency = c.health.failDurationMilliseconds > 0 && c.health.unhealthyLatencyMilliseconds != nil
        hasSubrequest = c.subrequest != nil
        isFastCGI = c.fastcgi != nil
        viaNameLine = c.viaName.utf8.map { $0 == 0 || $0 == 0x0D || $0 == 0x0A ? 0x20 : $0 } + [0x0D, 0x0A]
        hosts = c.upstreams.map { UpstreamHost($0) }
        balancer = LoadBalancer(policy: c.policy, hosts: hosts, health: c.health)
        UpstreamRegistry.add(ObjectIdentifier(self), hosts)
    }

    deinit {
        UpstreamRegistry.remove(ObjectIdentifier(self))
    }

    /// Proxies `request`. Without an event loop (unit tests that call handlers directly) the
    /// answer is 502, as for an unreachable upstream.
    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        guard let loop = EventLoop.current else {
            response.status = 502
            response.sendEmpty()
            return .done
        }
        let ul = UpstreamLoop.of(loop)
        if configuration.health.activeEnabled && !healthStarted.load(ordering: .relaxed) {
            if healthStarted.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                HealthChecker.start(self, on: ul)
            }
        }
        let ex = ul.freeExchanges.popLast() ?? ProxyExchange(loop: ul)
        return ex.start(self, request, response)
    }
}
