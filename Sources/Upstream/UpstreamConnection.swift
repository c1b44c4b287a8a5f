#if canImport(Glibc)
import Glibc
#endif
import CLinux
import EventLoop
import IOCore

/// What an `UpstreamConnection` tells the exchange that uses it. All calls on the loop thread,
/// from the connection's own events (never from inside a call the exchange made).
package protocol UpstreamConnectionDelegate: AnyObject {
    /// The dial completed; the connection is ready for a request.
    func upstreamConnected(_ connection: UpstreamConnection)
    /// New bytes are in `connection.input`, or `connection.peerEOF` became true.
    func upstreamReadable(_ connection: UpstreamConnection)
    /// `connection.output` was fully written after a partial write.
    func upstreamWritable(_ connection: UpstreamConnection)
    /// The connection failed and is closed (dial error, I/O error, timeout).
    func upstreamFailed(_ connection: UpstreamConnection, _ error: UpstreamError)
}

/// One socket to an upstream (TCP or unix), non-blocking on its event loop.
///
/// State machine (explicit, one per connection):
///
///     connecting ──(connected)──► active ──(released, reusable)──► idle ──(taken)──► active
///         │                         │                               │
///         └──(every address failed)─┴──(error, timeout, not reusable)┴──(EOF, timeout)──► closed
///
/// The fd is owned here and closed exactly once in `close()` (or given away by `detach()`).
/// Timeouts use the loop's intrusive `TimeoutList`s: dial, idle, response head, read, write.
package final class UpstreamConnection: TimeoutNode, EventHandler {
    package enum State: Equatable, Sendable { case connecting, active, idle, closed }
    /// Which timer is armed (the node is in at most one list).
    package enum TimerKind: Equatable, Sendable { case none, dial, idle, responseHead, read, write }

    package private(set) var state: State = .connecting
    package private(set) var fd: Int32 = -1
    /// Response bytes from the upstream; the exchange consumes them.
    package let input = ByteBuffer(capacity: 16384)
    /// Request bytes not yet written.
    package let output = ByteBuffer(capacity: 4096)
    /// The exchange using the connection (strong while active; nil when idle).
    package var delegate: (any UpstreamConnectionDelegate)?
    /// The upstream closed its sending side.
    package private(set) var peerEOF = false
    /// Requests completed on this connection (a reused connection may have been closed by the
    /// upstream just before our request: Go retries those).
    package internal(set) var completedRequests = 0
    package private(set) var timer: TimerKind = .none
    /// The address connected to.
    package private(set) var address: SocketAddress?
    /// Bytes asked for per read: small for heads, larger while a big body streams (set by
    /// the exchange; the input buffer shrinks back when the connection goes idle).
    package var readSize = 16384

    let pool: HostPool
    private var addresses: [SocketAddress] = []
    private var nextAddress = 0
    private var registered = false
    private var interest: Interest = []
    private var wantRead = true
    private var lastError: Int32 = ECONNREFUSED

    init(pool: HostPool) {
        self.pool = pool
        super.init()
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    // MARK: Dialing

    /// Starts connecting to `addresses` in order (RFC 6724 order from the resolver; Go's
    /// dialSerial): each failure moves to the next; when all failed, `upstreamFailed`.
    func dial(_ addresses: [SocketAddress]) {
        self.addresses = addresses
        nextAddress = 0
        arm(.dial)
        dialNext()
    }

    private func dialNext() {
        while nextAddress < addresses.count {
            let a = addresses[nextAddress]
            nextAddress += 1
            var inProgress = false
            do {
                let owned = try Socket.connect(a, inProgress: &inProgress)
                fd = owned.release()
            } catch {
                lastError = error.errno
                continue
            }
            address = a
            if case .unix = a, inProgress {
                // EAGAIN on a unix socket means its backlog is full, not "in progress".
                lastError = EAGAIN
                Glibc.close(fd)
                fd = -1
                continue
            }
            configureSocket()
            do {
                try pool.loop.loop.register(fd: fd, interest: inProgress ? .write : .read, handler: self)
                registered = true
                interest = inProgress ? .write : .read
            } catch {
                lastError = error.errno
                Glibc.close(fd)
                fd = -1
                continue
            }
            if !inProgress {
                // Connected at once (unix sockets, sometimes loopback): report from the loop,
                // not from inside the caller's stack.
                interest = .write
                pool.loop.loop.modify(fd: fd, interest: .write)
            }
            return
        }
        failDial(.connect(lastError))
    }

    private func configureSocket() {
        if case .unix = address {} else { setTCPOptions() }
    }

    /// TCP_NODELAY (Go's default) and keepalive probes every 30 s (Caddy's transport default).
    private func setTCPOptions() {
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        try? Socket.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, 30)
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, 30)
    }

    private func finishConnect() {
        let err = (try? Socket.getOption(fd, SOL_SOCKET, SO_ERROR)) ?? EIO
        if err != 0 {
            lastError = err
            closeSocket()
            dialNext()
            return
        }
        state = .active
        disarm()
        setInterest(wantRead ? .read : [])
        delegate?.upstreamConnected(self)
    }

    private func failDial(_ e: UpstreamError) {
        closeSocket()
        state = .closed
        disarm()
        pool.connectionClosed(self)
        let d = delegate
        delegate = nil
        d?.upstreamFailed(self, e)
    }

    // MARK: Events

    package func handleEvents(_ events: UInt32) {
        switch state {
        case .connecting:
            finishConnect()
        case .idle:
            // An idle connection has nothing to say: EOF or stray bytes end it.
            close()
        case .active:
            if events & EventBits.writable != 0 {
                guard flush() else { return }
                if output.isEmpty {
                    setInterest(wantRead && !peerEOF ? .read : [])
                    if timer == .write { disarm() }
                    delegate?.upstreamWritable(self)
                    if state != .active { return }
                }
            }
            if events & (EventBits.readable | EventBits.hangup | EventBits.error) != 0 && wantRead && !peerEOF {
                readOnce()
            }
        case .closed:
            break
        }
    }

    private func readOnce() {
        let r: IOResult
        do {
            r = try Socket.read(fd, into: input, minimumSpace: readSize)
        } catch {
            fail(.io(error.errno))
            return
        }
        switch r {
        case .done(0):
            peerEOF = true
            setInterest(output.isEmpty ? [] : .write)
        case .done:
            if timer == .read || timer == .responseHead { rearm() }
        case .wouldBlock:
            return
        }
        delegate?.upstreamReadable(self)
    }

    // MARK: Exchange API

    /// Queues `bytes` and writes what the socket takes. Returns true when nothing is left
    /// buffered (false: wait for `upstreamWritable`). After an error the connection is
    /// closed and `upstreamFailed` follows from the loop.
    @discardableResult
    package func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state == .active else { return false }
        if output.isEmpty, bytes.count > 0 {
            do {
                let r = try Socket.write(fd, bytes)
                if case .done(let n) = r, n == bytes.count { return true }
                let n: Int
                if case .done(let w) = r { n = w } else { n = 0 }
                output.append(UnsafeRawBufferPointer(rebasing: bytes[n...]))
            } catch {
                failSoon(.io(error.errno))
                return false
            }
        } else if bytes.count > 0 {
            output.append(bytes)
        }
        return flushQueued()
    }

    /// Writes what `output` holds (the exchange appended to it directly).
    @discardableResult
    package func flushQueued() -> Bool {
        guard state == .active else { return false }
        guard flush() else { return false }
        if output.isEmpty { return true }
        setInterest(wantRead && !peerEOF ? [.read, .write] : .write)
        if timer == .none || timer == .read { arm(.write) }
        return false
    }

    /// Starts or stops reading (back-pressure from the client side).
    package func setReading(_ on: Bool) {
        guard wantRead != on else { return }
        wantRead = on
        guard state == .active else { return }
        var i: Interest = on && !peerEOF ? .read : []
        if !output.isEmpty { i.insert(.write) }
        setInterest(i)
    }

    /// Arms the response-head timer (after the request was written), or the read timer.
    package func armReadTimer(head: Bool) {
        if head, pool.transport.responseHeaderTimeoutMilliseconds != nil {
            arm(.responseHead)
        } else if pool.transport.readTimeoutMilliseconds != nil {
            arm(.read)
        } else if timer == .responseHead {
            disarm()
        }
    }

    /// Gives the socket away (WebSocket tunnel): deregisters it and returns the fd; the
    /// buffered input stays in `input` for the caller to copy.
    package func detach() -> Int32 {
        let f = fd
        disarm()
        if registered { pool.loop.loop.deregister(fd: f) }
        registered = false
        fd = -1
        state = .closed
        pool.connectionClosed(self)
        delegate = nil
        return f
    }

    /// Ends the exchange on this connection: back to the pool when `reusable`, else closed.
    package func release(reusable: Bool) {
        delegate = nil
        guard state == .active else { return }
        completedRequests += 1
        if reusable && !peerEOF && output.isEmpty && input.isEmpty && pool.transport.keepAlive && pool.hasIdleRoom {
            state = .idle
            wantRead = true
            setInterest(.read)
            arm(.idle)
            input.clear()
            if readSize > 16384 {
                readSize = 16384
                input.shrinkIfEmpty(to: 16384)
            }
            pool.putIdle(self)
            return
        }
        close()
    }

    /// Closes the socket now (no callbacks).
    package func close() {
        if state == .closed { return }
        let wasIdle = state == .idle
        state = .closed
        disarm()
        closeSocket()
        if wasIdle { pool.removeIdle(self) }
        pool.connectionClosed(self)
        delegate = nil
    }

    /// Taken from the idle list by a new exchange.
    func activate() {
        state = .active
        disarm()
        input.clear()
        output.clear()
    }

    // MARK: Internals

    private func fail(_ e: UpstreamError) {
        let d = delegate
        close()
        d?.upstreamFailed(self, e)
    }

    /// A failure found inside a call from the exchange: reported from the loop instead.
    private func failSoon(_ e: UpstreamError) {
        let d = delegate
        close()
        guard let d else { return }
        pool.loop.loop.schedule(afterMilliseconds: 0) { d.upstreamFailed(self, e) }
    }

    /// Writes `output`; false when the connection failed (and was closed).
    private func flush() -> Bool {
        while !output.isEmpty {
            do {
                let r = try Socket.write(fd, from: output)
                if case .wouldBlock = r { return true }
                if timer == .write { rearm() }
            } catch {
                fail(.io(error.errno))
                return false
            }
        }
        return true
    }

    private func closeSocket() {
        guard fd >= 0 else { return }
        if registered { pool.loop.loop.deregister(fd: fd) }
        registered = false
        Glibc.close(fd)
        fd = -1
    }

    private func setInterest(_ i: Interest) {
        guard registered, i != interest else { return }
        interest = i
        pool.loop.loop.modify(fd: fd, interest: i)
    }

    private func arm(_ kind: TimerKind) {
        let ms: Int?
        switch kind {
        case .none: ms = nil
        case .dial: ms = pool.transport.dialTimeoutMilliseconds
        case .idle: ms = pool.transport.idleTimeoutMilliseconds
        case .responseHead: ms = pool.transport.responseHeaderTimeoutMilliseconds
        case .read: ms = pool.transport.readTimeoutMilliseconds
        case .write: ms = pool.transport.writeTimeoutMilliseconds
        }
        guard let ms, ms > 0 else {
            disarm()
            return
        }
        timer = kind
        pool.loop.timeoutList(milliseconds: ms).arm(self, now: Clock.monotonicNanos())
    }

    private func rearm() { arm(timer) }

    private func disarm() {
        timer = .none
        disarmTimeout()
    }

    package override func timeoutExpired() {
        let kind = timer
        timer = .none
        switch kind {
        case .none:
            return
        case .idle:
            close()
        case .dial:
            failDial(.dialTimeout)
        case .responseHead:
            fail(.responseHeaderTimeout)
        case .read, .write:
            fail(.ioTimeout)
        }
    }
}
