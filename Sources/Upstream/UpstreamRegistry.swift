import Synchronization

/// Every live `ReverseProxy` in the process (weakly held), for the admin API's
/// `GET /reverse_proxy/upstreams`: Caddy lists each upstream address once, with the requests
/// in flight to it and its recorded failures, across all `reverse_proxy` handlers — including
/// those of a config that a reload replaced while its requests finish.
package enum UpstreamRegistry {
    private final class WeakProxy: @unchecked Sendable {
        weak var proxy: ReverseProxy?
        init(_ p: ReverseProxy) { proxy = p }
    }

    private static let proxies = Mutex<[WeakProxy]>([])

    static func add(_ p: ReverseProxy) {
        proxies.withLock { list in
            list.removeAll { $0.proxy == nil }
            list.append(WeakProxy(p))
        }
    }

    /// One entry per upstream address (`host:port` or `unix//path`, as written), in the order
    /// first configured: requests in flight to it and failures counted by passive health
    /// checks, summed over the handlers that use it.
    package static func snapshot() -> [(address: String, numRequests: Int, fails: Int)] {
        let live = proxies.withLock { list -> [ReverseProxy] in
            list.removeAll { $0.proxy == nil }
            return list.compactMap(\.proxy)
        }
        var order: [String] = []
        var totals: [String: (Int, Int)] = [:]
        for p in live {
            for h in p.hosts {
                let a = h.address.dial
                let n = h.inFlight.load(ordering: .relaxed)
                let f = h.fails.load(ordering: .relaxed)
                if let t = totals[a] {
                    totals[a] = (t.0 + n, t.1 + f)
                } else {
                    order.append(a)
                    totals[a] = (n, f)
                }
            }
        }
        return order.map { a in (a, totals[a]!.0, totals[a]!.1) }
    }
}
