import EventLoop
import IOCore
import Synchronization
import TLS

/// One configured upstream, shared by every event loop: its address and the counters that
/// load balancing and health checks read across loops (atomics; Caddy's `Host`).
package final class UpstreamHost: Sendable {
    package let address: UpstreamAddress
    /// Index of this host's pool in each loop's pool table.
    package let slot: Int
    /// The dial address as bytes (hash policies).
    package let dialBytes: [UInt8]
    /// Requests in flight (least_conn, `unhealthy_request_count`).
    package let inFlight = Atomic<Int>(0)
    /// Passive-check failures within the last `fail_duration`.
    package let fails = Atomic<Int>(0)
    /// The last active check failed.
    package let activeUnhealthy = Atomic<Bool>(false)
    /// Open connections over all loops (`max_conns_per_host`).
    package let openConnections = Atomic<Int>(0)

    private static let slots = Atomic<Int>(0)

    package init(_ address: UpstreamAddress) {
        self.address = address
        dialBytes = Array(address.dial.utf8)
        slot = UpstreamHost.slots.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Healthy for passive (`maxFails` within `fail_duration`) and active checks.
    package func isHealthy(_ h: HealthOptions) -> Bool {
        isHealthy(failDurationMilliseconds: h.failDurationMilliseconds, maxFails: h.maxFails,
                  unhealthyRequestCount: h.unhealthyRequestCount)
    }

    @inline(__always)
    package func isHealthy(failDurationMilliseconds: Int, maxFails: Int, unhealthyRequestCount: Int) -> Bool {
        if activeUnhealthy.load(ordering: .relaxed) { return false }
        if failDurationMilliseconds > 0 && fails.load(ordering: .relaxed) >= max(1, maxFails) { return false }
        if unhealthyRequestCount > 0 && inFlight.load(ordering: .relaxed) >= unhealthyRequestCount { return false }
        return true
    }

    /// Records a passive failure that expires after `fail_duration` (on `loop`'s timers).
    package func countFailure(_ h: HealthOptions, on loop: EventLoop) {
        guard h.failDurationMilliseconds > 0 else { return }
        fails.wrappingAdd(1, ordering: .relaxed)
        loop.schedule(afterMilliseconds: h.failDurationMilliseconds) { [self] in
            fails.wrappingSubtract(1, ordering: .relaxed)
        }
    }
}

/// Waits for a connection slot when `max_conns_per_host` is reached.
protocol PoolWaiter: AnyObject {
    func poolSlotAvailable()
}

/// The keep-alive pool of one upstream on one event loop: idle connections (most recently
/// used first, at most `maxIdlePerHost`, each closed after `idleTimeout`), the dial, and
/// the waiters for a connection slot. Only touched by its loop.
final class HostPool {
    let host: UpstreamHost
    let transport: TransportOptions
    unowned let loop: UpstreamLoop
    let slot: Int
    /// TLS to this upstream (nil: plain TCP or unix).
    let tlsContext: TLSContext?
    /// SNI and the name verified: `tls_server_name`, else the upstream's host.
    let tlsServerName: String?
    /// The newest resumable session from a connection of this pool (loop-local).
    var tlsSession: TLSSession?
    private var idle: [UpstreamConnection] = []
    private var waiters: [PoolWaiter] = []
    private var waiterTimer: TimerID? = nil

    init(host: UpstreamHost, transport: TransportOptions, tls: UpstreamTLS?, loop: UpstreamLoop) {
        self.host = host
        self.transport = transport
        self.loop = loop
        slot = host.slot
        var tls = tls
        if tls != nil, !transport.tlsExceptPorts.isEmpty, case .tcp(_, let port) = host.address.endpoint,
           transport.tlsExceptPorts.contains(String(port)) {
            tls = nil
        }
        tlsContext = tls?.context
        if let tls {
            if let n = tls.serverName {
                tlsServerName = n
            } else if case .tcp(let name, _) = host.address.endpoint {
                tlsServerName = name
            } else {
                tlsServerName = nil
            }
        } else {
            tlsServerName = nil
        }
        idle.reserveCapacity(min(transport.maxIdlePerHost, 64))
    }

    /// Number of idle connections.
    var idleCount: Int { idle.count }

    /// The most recently used idle connection, made active; nil when none.
    func takeIdle() -> UpstreamConnection? {
        while let c = idle.popLast() {
            if c.state == .idle {
                c.activate()
                return c
            }
        }
        return nil
    }

    /// True when a new connection may be opened now (`max_conns_per_host`).
    func mayOpen() -> Bool {
        let limit = transport.maxConnsPerHost
        return limit <= 0 || host.openConnections.load(ordering: .relaxed) < limit
    }

    /// A new connection (not yet dialing); counts against `max_conns_per_host`.
    func makeConnection() -> UpstreamConnection {
        host.openConnections.wrappingAdd(1, ordering: .relaxed)
        return UpstreamConnection(pool: self)
    }

    /// True when another idle connection may be kept.
    var hasIdleRoom: Bool { idle.count < transport.maxIdlePerHost }

    /// Keeps `c` (already idle) for reuse.
    func putIdle(_ c: UpstreamConnection) {
        idle.append(c)
        if !waiters.isEmpty { wakeWaiterSoon() }
    }

    func removeIdle(_ c: UpstreamConnection) {
        if let i = idle.lastIndex(where: { $0 === c }) { idle.remove(at: i) }
    }

    /// Called once for every connection made by `makeConnection` when it closes.
    func connectionClosed(_ c: UpstreamConnection) {
        host.openConnections.wrappingSubtract(1, ordering: .relaxed)
        if !waiters.isEmpty { wakeWaiterSoon() }
    }

    /// Wakes waiters from the loop, not from inside the releasing exchange's stack.
    private func wakeWaiterSoon() {
        loop.loop.schedule(afterMilliseconds: 0) { [weak self] in self?.wakeWaiter() }
    }

    // MARK: Waiting for a slot

    func wait(_ w: PoolWaiter) {
        waiters.append(w)
        // Connections of other loops free slots without telling this one: poll while waiting.
        if waiterTimer == nil { scheduleWaiterPoll() }
    }

    func cancelWait(_ w: PoolWaiter) {
        if let i = waiters.firstIndex(where: { $0 === w }) { waiters.remove(at: i) }
    }

    private func scheduleWaiterPoll() {
        waiterTimer = loop.loop.schedule(afterMilliseconds: 10) { [weak self] in
            guard let self else { return }
            self.waiterTimer = nil
            self.wakeWaiter()
            if !self.waiters.isEmpty { self.scheduleWaiterPoll() }
        }
    }

    private func wakeWaiter() {
        while !waiters.isEmpty && (!idle.isEmpty || mayOpen()) {
            let w = waiters.removeFirst()
            w.poolSlotAvailable()
        }
    }

    /// Closes every idle connection (used by tests and when a configuration is dropped).
    func closeIdle() {
        let all = idle
        idle.removeAll()
        for c in all { c.close() }
    }
}
