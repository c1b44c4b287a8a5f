#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP1
import HTTPCore
import IOCore

/// Connection objects are recycled per loop. A closed plain-TCP HTTP/1 connection (driver,
/// protocol state machine, request, response, parser, input and output buffers) goes back to
/// its loop's pool instead of being freed, and the next socket accepted on that loop for the
/// same runtime takes it: a `Connection: close` exchange then allocates almost nothing.
///
/// Rules (every one checked in `recycleIntoPool`):
/// - only plain TCP objects that stayed HTTP/1 (no TLS session, not switched to HTTP/2, not
///   handed over to a WebSocket tunnel);
/// - only once nothing refers to the object any more: no handler holds the response, no
///   service callback is queued, no timer is armed, the fd is closed and forgotten;
/// - only for the loop's current runtime (a reload empties the pool, so a pooled object
///   never keeps an old configuration alive) and never while the loop drains;
/// - everything about the previous socket is reset on the way in (`HTTP1Connection.recycle`
///   drops the old exchange's references: file region, body reader, decorators, error
///   router, variables) and on the way out (`reopen`: the driver's per-socket fields).
extension HTTP1ServerConnection {
    /// Most objects kept per loop: enough to absorb the swings in a loop's live connection
    /// count under `Connection: close` load (`wrk -c50`: with 32, 10% of accepts still
    /// allocated; with 64, none), while bounding what a burst leaves behind (an idle object
    /// holds ~14 KiB: 4 KiB input, 4 KiB output, request, response, scratch buffers).
    static let poolLimit = 64

    /// Puts this closed connection into its loop's pool; false when it may not be reused.
    func recycleIntoPool(_ c: HTTP1Connection) -> Bool {
        guard closed, !registered, !serviceRequested, h2 == nil, tls == nil, cipherIn == nil,
            !isArmed, c.isRecyclable, !ctx.draining, runtime === ctx.runtime,
            ctx.connectionPool.count < HTTP1ServerConnection.poolLimit
        else { return false }
        c.recycle()
        // Back to the initial sizes, so one large request does not pin memory in the pool.
        input.shrinkIfEmpty(to: 4096)
        output.shrinkIfEmpty(to: 4096)
        c.request.scratch.clear()
        c.request.scratch.shrinkIfEmpty(to: 256)
        c.response.scratch.clear()
        c.response.scratch.shrinkIfEmpty(to: 512)
        ctx.connectionPool.append(self)
        return true
    }

    /// A pooled object takes over a newly accepted socket: the state of a fresh connection.
    func reopen(fd: Int32, peer: SocketAddress?, server: RuntimeServer, allowH2C: Bool) {
        self.fd = fd
        self.server = server
        self.allowH2C = allowH2C
        interest = .read
        registered = false
        closed = false
        lingering = false
        lastAction = .readMore
        serviceRequested = false
        draining = false
        noDelay = false
        h2 = nil
        altSvc = nil
        armedKey = nil
        conn.request.connection = ConnectionInfo(remote: peer, local: nil, isTLS: false)
        conn.request.connection.socket = fd
    }

    /// Breaks the driver/protocol cycle of an object leaving the pool for good.
    func discardFromPool() {
        conn = nil
    }

    /// Sets TCP_NODELAY (once per connection; see `flush`).
    func setNoDelay() {
        noDelay = true
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}

extension LoopContext {
    /// A pooled connection for `runtime`, or nil (objects of another runtime are dropped).
    func pooledConnection(for runtime: ServerRuntime) -> HTTP1ServerConnection? {
        while let c = connectionPool.popLast() {
            if c.runtime === runtime { return c }
            c.discardFromPool()
        }
        return nil
    }

    /// Empties the pool (reload, drain, stop).
    func emptyConnectionPool() {
        if connectionPool.isEmpty { return }
        for c in connectionPool { c.discardFromPool() }
        connectionPool.removeAll()
    }
}
