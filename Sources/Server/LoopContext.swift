import Config
import EventLoop
import HTTPCore
import IOCore
import Synchronization

/// Connection limits and timeouts of a server (Caddy's `servers` options).
package struct ServerLimits: Sendable {
    /// Maximum open client connections per process (0 = unlimited).
    package var maxConnections: Int = 0
    /// Time to receive a complete request head (slowloris guard).
    package var readHeaderTimeoutMilliseconds: Int = 10_000
    /// Idle keep-alive timeout between requests (Caddy: 5 min).
    package var idleTimeoutMilliseconds: Int = 300_000
    /// Max gap while reading a request body.
    package var readBodyTimeoutMilliseconds: Int = 60_000
    /// Max gap while the client is not taking our response bytes.
    package var writeTimeoutMilliseconds: Int = 60_000
    package init() {}

    /// Limits from the `servers` global option, defaults elsewhere.
    package init(_ o: ServerOptions) {
        if let v = o.readHeaderMilliseconds { readHeaderTimeoutMilliseconds = v }
        if let v = o.idleMilliseconds { idleTimeoutMilliseconds = v }
        if let v = o.readBodyMilliseconds { readBodyTimeoutMilliseconds = v }
        if let v = o.writeMilliseconds { writeTimeoutMilliseconds = v }
        if let v = o.maxHeaderBytes { maxHeaderBytes = v }
        quicRequireRetry = o.h3Retry
    }
    /// Largest request head accepted (Caddy: 16 KiB + Go's 4 KiB slack).
    package var maxHeaderBytes: Int = 20480
    /// Validate every QUIC client address with a Retry (RFC 9000 §8.1.2), not only under load.
    package var quicRequireRetry = false
}

/// Something a loop tracks for graceful shutdown and reload.
package protocol ManagedConnection: AnyObject {
    /// Finish the current request, then close; close now if idle.
    func drain()
    /// Close immediately.
    func forceClose()
}

/// A connection that asked to be called back later in the current loop iteration.
package protocol ServiceRequester: AnyObject {
    func service()
}

/// Per-loop state shared by every connection on the loop: date cache, access log buffer,
/// timeout lists, the live connection set. Touched only on the loop thread.
package final class LoopContext {
    package unowned(unsafe) let loop: EventLoop
    package let dateCache = DateCache()
    package let accessLog: AccessLogWriter
    package let headerTimeouts: TimeoutList
    package let idleTimeouts: TimeoutList
    package let bodyTimeouts: TimeoutList
    package let writeTimeouts: TimeoutList
    /// Short linger after a response that closes the connection (Go's closeWriteAndWait).
    package let lingerTimeouts: TimeoutList
    /// Connections to call back after this iteration's events.
    private var serviceQueue: [ServiceRequester] = []
    private var serviceBatch: [ServiceRequester] = []
    /// The runtime new connections use.
    package var runtime: ServerRuntime {
        didSet {
            if runtime !== oldValue {
                accessLog.forgetWriters()
                emptyConnectionPool()
            }
        }
    }
    /// Closed HTTP/1 connection objects kept for reuse (HTTP1ServerConnection+Pool).
    var connectionPool: [HTTP1ServerConnection] = []
    /// Live connections by fd.
    package private(set) var connections: [Int32: ManagedConnection] = [:]
    /// Set once shutdown started: connections close after their current request.
    package private(set) var draining = false
    /// Called once the loop has no connections left while draining.
    package var onDrained: (() -> Void)?
    package let limits: ServerLimits

    package init(loop: EventLoop, runtime: ServerRuntime, limits: ServerLimits) {
        self.loop = loop
        self.runtime = runtime
        self.limits = limits
        accessLog = AccessLogWriter()
        headerTimeouts = loop.makeTimeoutList(milliseconds: limits.readHeaderTimeoutMilliseconds)
        idleTimeouts = loop.makeTimeoutList(milliseconds: limits.idleTimeoutMilliseconds)
        bodyTimeouts = loop.makeTimeoutList(milliseconds: limits.readBodyTimeoutMilliseconds)
        writeTimeouts = loop.makeTimeoutList(milliseconds: limits.writeTimeoutMilliseconds)
        lingerTimeouts = loop.makeTimeoutList(milliseconds: 500)
        serviceQueue.reserveCapacity(16)
        serviceBatch.reserveCapacity(16)
        loop.afterEvents = { [unowned self] in self.afterEvents() }
    }

    /// Asks for `r.service()` once the current events are handled.
    package func requestService(_ r: ServiceRequester) {
        serviceQueue.append(r)
    }

    private func afterEvents() {
        // Two queues swapped, so the batch never shares storage with the queue being filled
        // (copy-then-removeAll would allocate new storage every iteration).
        while !serviceQueue.isEmpty {
            swap(&serviceQueue, &serviceBatch)
            for r in serviceBatch { r.service() }
            serviceBatch.removeAll(keepingCapacity: true)
        }
        accessLog.flush()
    }

    package var connectionCount: Int { connections.count }
    /// Connections accepted on this loop so far (`--exit-idle` notices short-lived ones).
    package var acceptedTotal = 0

    /// `connectionCount` as other loops see it, plus connections handed to this loop and not
    /// yet taken (HTTPServer balances accepted connections with it).
    package let load = LoopLoad()

    package func add(_ fd: Int32, _ c: ManagedConnection) {
        if connections.updateValue(c, forKey: fd) == nil { load.add(1) }
    }

    package func remove(_ fd: Int32) {
        if connections.removeValue(forKey: fd) != nil { load.add(-1) }
        if draining && connections.isEmpty { fireDrained() }
    }

    private func fireDrained() {
        let cb = onDrained
        onDrained = nil
        cb?()
    }

    /// Starts draining: every connection finishes its current request and closes.
    package func beginDrain(_ done: @escaping () -> Void) {
        draining = true
        onDrained = done
        emptyConnectionPool()
        for c in Array(connections.values) { c.drain() }
        if connections.isEmpty { fireDrained() }
    }

    /// Closes every connection now (grace period over).
    package func closeAll() {
        for c in Array(connections.values) { c.forceClose() }
        emptyConnectionPool()
        accessLog.flush()
    }
}

/// A loop's open connections, readable from any thread (relaxed: a placement hint, not a limit).
package final class LoopLoad: Sendable {
    private let value = Atomic<Int>(0)
    package init() {}
    package var current: Int { value.load(ordering: .relaxed) }
    package func add(_ n: Int) { value.wrappingAdd(n, ordering: .relaxed) }
}
