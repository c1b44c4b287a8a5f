import Synchronization

/// The upstreams of every live `ReverseProxy` in the process, for the admin API's
/// `GET /reverse_proxy/upstreams`: Caddy lists each upstream address once, with the requests
/// in flight to it and its recorded failures, across all `reverse_proxy` handlers — including
/// those of a config that a reload replaced while its requests finish.
///
/// A proxy adds its hosts when it is made and removes them in `deinit`. (Not a weak reference
/// to the proxy: that gives the object a side table, and every retain and release of it on the
/// request path would take the slow path.)
package enum UpstreamRegistry {
    private struct Entry {
        let owner: ObjectIdentifier
        let hosts: [UpstreamHost]
    }

    private static let entries = Mutex<[Entry]>([])

    static func add(_ owner: ObjectIdentifier, _ hosts: [UpstreamHost]) {
        entries.withLock { $0.append(Entry(owner: owner, hosts: hosts)) }
    }

    static func remove(_ owner: ObjectIdentifier) {
        entries.withLock { list in list.removeAll { $0.owner == owner } }
    }

    /// One entry per upstream address (`host:port` or `unix//path`, as written), in the order
    /// first configured: requests in flight to it and failures counted by passive health
    /// checks, summed over the handlers that use it.
    package static func snapshot() -> [(address: String, numRequests: Int, fails: Int)] {
        let hosts = entries.withLock { list in list.flatMap(\.hosts) }
        var order: [String] = []
        var totals: [String: (Int, Int)] = [:]
        for h in hosts {
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
        return order.map { a in (a, totals[a]!.0, totals[a]!.1) }
    }
}
