#if canImport(Glibc)
import Glibc
#endif
import CLinux
import EventLoop
import IOCore
import TLS

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
///     connecting ──(connected)──► [handshaking] ──► active ──(released, reusable)──► idle ──(taken)──► active
///         │                              │              │                               │
///         └──(every address failed)──────┴──(TLS error)─┴─(error, timeout, not reusable)┴──(EOF, timeout)──► closed
///
/// `handshaking` happens only for TLS upstreams (`https://`, `transport http { tls }`): the
/// sans-I/O `TLSConnection` sits between the socket and `input`/`output`, which always hold
/// plaintext; the dial timer covers the handshake. An idle TLS connection reads (and drops)
/// post-handshake messages such as TLS 1.3 session tickets instead of closing.
///
/// The fd is owned here and closed exactly once in `close()` (or given away by `detach()`).
/// Timeouts use the loop's intrusive `TimeoutList`s: dial, idle, response head, read, write.
package final class UpstreamConnection: TimeoutNode, EventHandler {
    package enum State: Equatable, Sendable { case connecting, handshaking, active, idle, closed }
    /// Which timer is armed (the node is in at most one list).
    package enum TimerKind: Equatable, Sendable { case none, dial, handshake, idle, responseHead, read, write }

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
    /// TLS to the upstream: the connection and its ciphertext buffers (nil for plain TCP/unix).
    private var tls: TLSConnection?
    private var cipherIn: ByteBuffer?
    private var cipherOut: ByteBuffer?
    private var sessionSaved = false

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
        if let ctx = pool.tlsContext {
            startTLS(ctx)
            return
        }
        state = .active
        disarm()
        setInterest(wantRead ? .read : [])
        delegate?.upstreamConnected(self)
    }

    // MARK: TLS

    /// Starts the client handshake: SNI and name verification against `tls_server_name` or
    /// the upstream host, ALPN `http/1.1`, resuming the pool's last session when there is one.
    private func startTLS(_ ctx: TLSContext) {
        let cin = ByteBuffer(capacity: 16384 + 512)
        let cout = ByteBuffer(capacity: 4096)
        do {
            let t = try TLSConnection(client: ctx, input: cin, output: cout, serverName: pool.tlsServerName, session: pool.tlsSession)
            tls = t
            cipherIn = cin
            cipherOut = cout
            try t.startHandshake()
        } catch {
            failTLS(error)
            return
        }
        state = .handshaking
        arm(.handshake)
        guard flush() else { return }
        setInterest(cout.isEmpty ? .read : [.read, .write])
    }

    private func handshakeEvents(_ events: UInt32) {
        guard let t = tls, let cin = cipherIn, let cout = cipherOut else { return }
        if events & EventBits.writable != 0 {
            guard flush() else { return }
        }
        if events & (EventBits.readable | EventBits.hangup | EventBits.error) != 0 {
            let r: IOResult
            do {
                r = try Socket.read(fd, into: cin, minimumSpace: 16384)
            } catch {
                failDial(.tls("TLS handshake with \(pool.host.address.dial): \(error)"))
                return
            }
            switch r {
            case .done(0):
                failDial(.tls("TLS handshake with \(pool.host.address.dial): connection closed by the upstream"))
                return
            case .wouldBlock:
                break
            case .done:
                let done: Bool
                do {
                    done = try t.feed(into: input).handshakeCompleted
                } catch {
                    guard flush() else { return }
                    failTLS(error)
                    return
                }
                guard flush() else { return }
                if done {
                    state = .active
                    disarm()
                    setInterest(wantRead ? .read : [])
                    if !cout.isEmpty { setInterest(wantRead ? [.read, .write] : .write) }
                    delegate?.upstreamConnected(self)
                    return
                }
            }
        }
        if state == .handshaking { setInterest(cout.isEmpty ? .read : [.read, .write]) }
    }

    private func failTLS(_ error: TLSError) {
        failDial(.tls("TLS handshake with \(pool.host.address.dial): \(error)"))
    }

    /// Plaintext queued in `output` and ciphertext not yet written are both gone.
    private var outputDrained: Bool { output.isEmpty && (cipherOut?.isEmpty ?? true) }

    /// Encrypts what `output` holds (TLS only). False when the connection failed.
    private func sealOutput() -> Bool {
        guard let t = tls, !output.isEmpty else { return true }
        do {
            try t.write(from: output)
        } catch {
            failSoon(.tls("TLS write to \(pool.host.address.dial): \(error)"))
            return false
        }
        return true
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
        case .handshaking:
            handshakeEvents(events)
        case .idle:
            // An idle connection has nothing to say: EOF or stray bytes end it. A TLS upstream
            // may still send handshake messages (session tickets): those are consumed.
            if tls != nil && idleTLSRead() { return }
            close()
        case .active:
            if events & EventBits.writable != 0 {
                guard flush() else { return }
                if outputDrained {
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
            r = try Socket.read(fd, into: cipherIn ?? input, minimumSpace: readSize)
        } catch {
            fail(.io(error.errno))
            return
        }
        switch r {
        case .done(0):
            peerEOF = true
            setInterest(outputDrained ? [] : .write)
        case .done:
            if let t = tls {
                do {
                    if try t.feed(into: input).closeNotifyReceived {
                        peerEOF = true
                        setInterest(outputDrained ? [] : .write)
                    }
                } catch {
                    fail(.tls("TLS read from \(pool.host.address.dial): \(error)"))
                    return
                }
            }
            if timer == .read || timer == .responseHead { rearm() }
        case .wouldBlock:
            return
        }
        delegate?.upstreamReadable(self)
    }

    /// An idle TLS connection became readable: true when it only carried handshake messages
    /// (the connection stays idle), false when it must close (EOF, data, error).
    private func idleTLSRead() -> Bool {
        guard let t = tls, let cin = cipherIn else { return false }
        guard let r = try? Socket.read(fd, into: cin, minimumSpace: 4096) else { return false }
        switch r {
        case .wouldBlock:
            return true
        case .done(0):
            return false
        case .done:
            guard let res = try? t.feed(into: input), !res.closeNotifyReceived, input.isEmpty else { return false }
            return (cipherOut?.isEmpty ?? true)
        }
    }

    // MARK: Exchange API

    /// Queues `bytes` and writes what the socket takes. Returns true when nothing is left
    /// buffered (false: wait for `upstreamWritable`). After an error the connection is
    /// closed and `upstreamFailed` follows from the loop.
    @discardableResult
    package func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state == .active else { return false }
        if let t = tls {
            do {
                try t.write(bytes)
            } catch {
                failSoon(.tls("TLS write to \(pool.host.address.dial): \(error)"))
                return false
            }
            return flushQueued()
        }
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
        if outputDrained { return true }
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
        if !outputDrained { i.insert(.write) }
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

    /// Gives the socket away (WebSocket tunnel): deregisters it and returns the fd and, for a
    /// TLS upstream, the TLS connection (with its ciphertext buffers); the buffered plaintext
    /// input stays in `input` for the caller to copy.
    package func detach() -> (fd: Int32, tls: TLSConnection?) {
        let f = fd
        let t = tls
        tls = nil
        cipherIn = nil
        cipherOut = nil
        disarm()
        if registered { pool.loop.loop.deregister(fd: f) }
        registered = false
        fd = -1
        state = .closed
        pool.connectionClosed(self)
        delegate = nil
        return (f, t)
    }

    /// Ends the exchange on this connection: back to the pool when `reusable`, else closed.
    package func release(reusable: Bool) {
        delegate = nil
        guard state == .active else { return }
        completedRequests += 1
        if let t = tls, !sessionSaved, t.isEstablished {
            // The next connection to this upstream resumes this session (an abbreviated
            // handshake instead of a full one).
            sessionSaved = true
            pool.tlsSession = t.session
        }
        if reusable && !peerEOF && outputDrained && input.isEmpty && pool.transport.keepAlive && pool.hasIdleRoom {
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

    /// Writes `output` (through TLS when the upstream speaks it); false when the connection
    /// failed (and was closed).
    private func flush() -> Bool {
        guard sealOutput() else { return false }
        let wire = cipherOut ?? output
        while !wire.isEmpty {
            do {
                let r = try Socket.write(fd, from: wire)
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
        tls = nil
        cipherIn = nil
        cipherOut = nil
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
        case .handshake: ms = pool.transport.tlsTimeoutMilliseconds ?? pool.transport.dialTimeoutMilliseconds
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
        case .handshake:
            failDial(.tls("TLS handshake with \(pool.host.address.dial): timeout"))
        case .responseHead:
            fail(.responseHeaderTimeout)
        case .read, .write:
            fail(.ioTimeout)
        }
    }
}
