internal import CNGTCP2
import HTTPCore
import IOCore

/// Produces responses for HTTP/3 requests; the server's router (same shape as
/// `HTTP2Responder`), plus the access-log hook.
package protocol HTTP3Responder: AnyObject {
    /// Handles one request. `.done`/`.next` with nothing sent gets an empty response with the
    /// response's current status; `.pending` means the handler finishes `response` later on
    /// this loop.
    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult
    /// A stream's exchange ended (response complete on the wire, or the stream was reset
    /// after its handler ran): the access-log hook, called before the request and response
    /// are recycled.
    func finished(_ request: HTTPRequest, _ response: HTTPResponse, bytesRead: Int64)
}

/// What a new QUIC connection is served with, chosen when its first Initial arrives.
package struct QUICAcceptance {
    package var responder: any HTTP3Responder
    package var credentials: QUICTLSCredentials
    /// The server's client-certificate policies (nil: it has none). With any, no request is
    /// handled from 0-RTT data (the client has not proven its certificate yet), Host must
    /// match the SNI (421 otherwise, as Caddy), and a resumed session's stored certificate is
    /// checked again against the policy.
    package var clientAuth: (any QUICClientAuthSelector)?
    package init(responder: any HTTP3Responder, credentials: QUICTLSCredentials,
                 clientAuth: (any QUICClientAuthSelector)? = nil) {
        self.responder = responder
        self.credentials = credentials
        self.clientAuth = clientAuth
    }
}

/// The socket side of an endpoint: the driver that owns the UDP socket.
package protocol QUICEndpointDelegate: AnyObject {
    /// Sends `bytes` to `remote` as datagrams of `segmentSize` bytes (the last may be
    /// shorter; `segmentSize` ≥ `bytes.count` means one datagram), from `local` (nil: let the
    /// kernel choose), with the ECN codepoint `ecn` (RFC 9000 §13.4). Addresses are
    /// `sockaddr`s. Returns false when the socket did not take them (they count as lost;
    /// QUIC retransmits).
    func quicEndpoint(send bytes: UnsafeRawBufferPointer, segmentSize: Int, to remote: UnsafeRawPointer,
                      remoteLength: Int, from local: UnsafeRawPointer?, localLength: Int, ecn: UInt32) -> Bool
    /// Something changed outside a call into the endpoint (an asynchronous handler wrote a
    /// response): call `service()` later in this loop iteration, not from inside this callback.
    func quicEndpointNeedsService(_ endpoint: QUICEndpoint)
    /// A new connection is being accepted: what serves it, or nil to refuse it.
    func quicEndpointAccept(_ endpoint: QUICEndpoint) -> QUICAcceptance?
}

/// One QUIC server endpoint (RFC 9000) on one UDP socket, sans-I/O: the driver passes each
/// received datagram to `receive`, then calls `flush()`; the endpoint routes packets to
/// connections by destination connection ID (§5.2), answers what belongs to no connection
/// (Version Negotiation §6, Retry §8.1.2, Stateless Reset §10.3, CONNECTION_CLOSE for refused
/// connections), and hands outgoing packets to its delegate. The driver arms one timer for
/// `nextDeadline` and calls `handleTimers` when it fires.
///
/// Everything runs on the loop thread that owns the socket. Connections are kept alive by the
/// routing table (and, after closing, while a handler still holds one of their responses).
package final class QUICEndpoint {
    /// Length of every connection ID Berth issues (RFC 9000 §5.1; ≥ 8 makes them unguessable).
    static let cidLength = 18

    let configuration: HTTP3Configuration
    let dateCache: DateCache
    package weak var delegate: (any QUICEndpointDelegate)?
    let secret: [UInt8]
    /// Session tickets are encrypted with a key derived from `secret` and the transport
    /// parameters: a client remembers them with the ticket and may use them in 0-RTT (RFC 9000
    /// §7.4.1), so when a new configuration changes them, older tickets stop decrypting and
    /// those clients do a full handshake instead of sending early data beyond new limits.
    let ticketKey: QUICTicketKey
    /// GnuTLS's 0-RTT anti-replay table (nil when early data is off).
    let antiReplay: QUICAntiReplay?

    /// The transport parameters a 0-RTT client relies on, as bytes for the ticket key.
    static func transportFingerprint(_ c: HTTP3Configuration) -> [UInt8] {
        var out: [UInt8] = []
        for v in [c.settings.streamReceiveWindow, c.settings.connectionReceiveWindow, c.settings.maxConcurrentStreams,
                  c.settings.activeConnectionIDLimit, c.settings.maxFieldSectionSize, c.settings.qpackTableCapacity,
                  c.settings.qpackBlockedStreams, c.settings.earlyData ? 1 : 0]
        {
            withUnsafeBytes(of: UInt64(v).littleEndian) { out += $0 }
        }
        return out
    }
    let chunkPool = QUICChunkPool()
    /// ngtcp2's and nghttp3's allocator for every connection of this endpoint.
    let allocator = QUICAllocator()
    let serverName: [UInt8]?

    /// Routing table: every live connection ID (the client's original DCID and every CID
    /// we issued) → its connection.
    var routes: [QUICConnectionID: QUICConnection] = [:]
    /// Every connection not yet removed (the owning references).
    var connections: [ObjectIdentifier: QUICConnection] = [:]
    /// Closed connections whose handlers still hold a response (they refer to streams
    /// unowned): freed once the last one finishes.
    var lingering: [ObjectIdentifier: QUICConnection] = [:]
    /// Connections with output (or streams) to process at the next `flush`.
    var dirty: [QUICConnection] = []
    /// Connections to free at the next `flush`.
    var graveyard: [QUICConnection] = []
    private var dirtyScratch: [QUICConnection] = []
    /// Lazy min-heap of connection deadlines; stale entries are skipped when popped.
    var timers = QUICTimerHeap()
    /// Connections that have not completed their handshake.
    var handshaking = 0
    /// Set by `beginGracefulShutdown`: new connections are refused.
    package private(set) var shuttingDown = false
    var callDepth = 0
    /// Outgoing packets are assembled here (one GSO batch at a time).
    let txBuffer: UnsafeMutableRawPointer
    static let txBufferSize = 64 * 1500

    // Counters (tests and metrics).
    package internal(set) var acceptedConnections = 0
    package internal(set) var retriesSent = 0
    package internal(set) var statelessResetsSent = 0
    package internal(set) var versionNegotiationsSent = 0
    package internal(set) var refusedConnections = 0

    /// The endpoints sharing this one's UDP socket, and this one's index among them: every
    /// CID issued here satisfies `steering.owner(of:) == steeringIndex`.
    package let steering: QUICSteering
    package let steeringIndex: Int

    /// An endpoint alone on its socket, or endpoint `index` of `steering`'s.
    package init(configuration: HTTP3Configuration, dateCache: DateCache, steering: QUICSteering? = nil, index: Int = 0) {
        self.configuration = configuration
        let steering = steering ?? QUICSteering(count: 1, earlyData: configuration.settings.earlyData)
        self.steering = steering
        steeringIndex = min(max(0, index), steering.count - 1)
        self.dateCache = dateCache
        var s = configuration.staticSecret
        if s.count < 16 {
            s = [UInt8](repeating: 0, count: 32)
            s.withUnsafeMutableBytes { QUICRandom.fill($0.baseAddress!, count: 32) }
        }
        secret = s
        ticketKey = QUICTicketKey(secret: s + QUICEndpoint.transportFingerprint(configuration))
        antiReplay = configuration.settings.earlyData ? steering.antiReplay : nil
        serverName = configuration.serverName.map { Array($0.utf8) }
        txBuffer = .allocate(byteCount: QUICEndpoint.txBufferSize, alignment: 16)
    }

    deinit { txBuffer.deallocate() }

    /// A new random connection ID of `length` bytes that routes to this endpoint.
    func newConnectionID(length: Int = QUICEndpoint.cidLength) -> ngtcp2_cid {
        var cid = ngtcp2_cid.random(length: length)
        if length > 0 {
            withUnsafeMutableBytes(of: &cid.data) { $0[0] = steering.steer($0[0], index: steeringIndex) }
        }
        return cid
    }

    /// Open connections (handshaking, serving, closing or draining).
    package var connectionCount: Int { connections.count }

    /// Connections waiting only for handlers to let go of them.
    package var lingeringCount: Int { lingering.count }

    /// The earliest deadline of any connection (monotonic ns), or nil.
    package var nextDeadline: UInt64? { timers.peekValid() }

    // MARK: Receiving

    /// One datagram from `remote` that arrived on `local` (both `sockaddr`s) with ECN bits
    /// `ecn`. `packet` may be modified (decryption happens in place in ngtcp2's copy; we never
    /// keep it). Call `flush()` after a batch.
    package func receive(_ packet: UnsafeRawBufferPointer, remote: UnsafeRawPointer, remoteLength: Int,
                         local: UnsafeRawPointer, localLength: Int, ecn: UInt32, now: UInt64) {
        guard let base = packet.baseAddress?.assumingMemoryBound(to: UInt8.self), packet.count > 0 else { return }
        callDepth += 1
        defer { callDepth -= 1 }
        var vc = ngtcp2_version_cid()
        let rv = ngtcp2_pkt_decode_version_cid(&vc, base, packet.count, QUICEndpoint.cidLength)
        var path = ngtcp2_path(
            local: ngtcp2_addr(addr: UnsafeMutablePointer(mutating: local.assumingMemoryBound(to: sockaddr.self)),
                               addrlen: socklen_t(localLength)),
            remote: ngtcp2_addr(addr: UnsafeMutablePointer(mutating: remote.assumingMemoryBound(to: sockaddr.self)),
                                addrlen: socklen_t(remoteLength)),
            user_data: nil)
        if rv == NGTCP2_ERR_VERSION_NEGOTIATION {
            sendVersionNegotiation(vc, path: &path, packetLength: packet.count)
            return
        }
        guard rv == 0, let dcid = vc.dcid else { return }
        let key = QUICConnectionID(dcid, count: vc.dcidlen)
        if let c = routes[key] {
            c.read(base, count: packet.count, path: &path, ecn: ecn, now: now)
            return
        }
        if base[0] & 0x80 == 0 {
            // A short header for no connection we know: RFC 9000 §10.3.
            sendStatelessReset(dcid: dcid, dcidLength: vc.dcidlen, path: &path, packetLength: packet.count)
            return
        }
        accept(base, count: packet.count, path: &path, ecn: ecn, now: now)
    }

    /// Processes every connection that has something to do: dispatches ready requests,
    /// delivers bodies, and writes packets. Call after a receive batch and from `service()`.
    package func flush() {
        callDepth += 1
        defer { callDepth -= 1 }
        var rounds = 0
        while !dirty.isEmpty && rounds < 8 {
            swap(&dirty, &dirtyScratch)
            for c in dirtyScratch {
                c.inDirtyList = false
                c.process(now: Clock.monotonicNanos())
            }
            dirtyScratch.removeAll(keepingCapacity: true)
            rounds += 1
        }
        if !dirty.isEmpty { delegate?.quicEndpointNeedsService(self) }
        if !graveyard.isEmpty { graveyard.removeAll() }
    }

    /// After `quicEndpointNeedsService`.
    package func service() { flush() }

    /// The driver's timer fired: connections whose deadline passed handle it (loss recovery,
    /// ACK delay, pacing, idle and handshake timeouts, closing periods).
    package func handleTimers(now: UInt64) {
        callDepth += 1
        defer { callDepth -= 1 }
        while let c = timers.popDue(now: now) {
            c.handleExpiry(now: now)
        }
        flush()
    }

    /// Graceful shutdown (RFC 9114 §5.2): new connections are refused, every connection
    /// gets GOAWAY and closes once its in-flight requests are done.
    package func beginGracefulShutdown() {
        shuttingDown = true
        callDepth += 1
        defer { callDepth -= 1 }
        let now = Clock.monotonicNanos()
        for c in Array(connections.values) where c.isOpen { c.beginGracefulShutdown(now: now) }
        flush()
    }

    /// Closes every connection now with H3_NO_ERROR (the grace period is over).
    package func closeAll() {
        callDepth += 1
        defer { callDepth -= 1 }
        let now = Clock.monotonicNanos()
        for c in Array(connections.values) {
            c.closeNow(now: now)
            remove(c)
        }
        graveyard.removeAll()
    }

    // MARK: Bookkeeping for connections

    /// Queues `c` for the next `flush`; asks the driver for a turn when called from outside.
    @inline(__always)
    func markDirty(_ c: QUICConnection) {
        if !c.inDirtyList {
            c.inDirtyList = true
            dirty.append(c)
        }
        if callDepth == 0 { delegate?.quicEndpointNeedsService(self) }
    }

    func addRoute(_ cid: QUICConnectionID, _ c: QUICConnection) { routes[cid] = c }

    func removeRoute(_ cid: QUICConnectionID) { routes[cid] = nil }

    /// Rearms `c`'s timer when its deadline changed.
    @inline(__always)
    func updateTimer(_ c: QUICConnection) {
        let d = c.nextDeadline
        if d != c.armedDeadline {
            c.armedDeadline = d
            if d != UInt64.max { timers.push(d, c) }
        }
        if timers.count > 4 * connections.count + 64 { timers.compact() }
    }

    /// Forgets `c`: its CIDs leave the routing table; it is freed now, or once its last
    /// handler lets go.
    func remove(_ c: QUICConnection) {
        guard c.registered else { return }
        c.registered = false
        for cid in c.routedCIDs where routes[cid] === c { routes[cid] = nil }
        c.routedCIDs.removeAll()
        if c.countsAsHandshaking {
            c.countsAsHandshaking = false
            handshaking -= 1
        }
        connections[ObjectIdentifier(c)] = nil
        c.armedDeadline = UInt64.max
        c.teardown()
        if c.handlersInFlight > 0 {
            lingering[ObjectIdentifier(c)] = c
        } else {
            // Freed at the next flush: we may be inside one of its methods.
            graveyard.append(c)
        }
    }

    /// A closed connection's last handler finished. It is freed at the next `flush`, not
    /// now: the call that told us runs inside one of its methods.
    func handlersDone(_ c: QUICConnection) {
        if let l = lingering.removeValue(forKey: ObjectIdentifier(c)) {
            graveyard.append(l)
            delegate?.quicEndpointNeedsService(self)
        }
    }

    /// Hands packets to the delegate.
    @inline(__always)
    func send(_ p: UnsafeRawPointer, count: Int, segmentSize: Int, path: UnsafePointer<ngtcp2_path>, ecn: UInt32) {
        guard count > 0 else { return }
        let local = path.pointee.local
        let remote = path.pointee.remote
        _ = delegate?.quicEndpoint(
            send: UnsafeRawBufferPointer(start: p, count: count), segmentSize: segmentSize,
            to: UnsafeRawPointer(remote.addr), remoteLength: Int(remote.addrlen),
            from: local.addrlen > 0 ? UnsafeRawPointer(local.addr) : nil, localLength: Int(local.addrlen), ecn: ecn)
    }
}

/// A binary min-heap of (deadline, connection). Entries are not removed when a connection's
/// deadline changes; `popDue` skips entries that no longer match the connection's armed
/// deadline, and `compact` rebuilds the heap when stale entries pile up.
struct QUICTimerHeap {
    private var heap: [(deadline: UInt64, conn: QUICConnection)] = []

    var count: Int { heap.count }

    mutating func push(_ d: UInt64, _ c: QUICConnection) {
        heap.append((d, c))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].deadline <= heap[i].deadline { break }
            heap.swapAt(p, i)
            i = p
        }
    }

    private mutating func popMin() -> (deadline: UInt64, conn: QUICConnection) {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, heap[l].deadline < heap[m].deadline { m = l }
                if r < heap.count, heap[r].deadline < heap[m].deadline { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    /// The earliest valid deadline (drops stale entries on top).
    mutating func peekValid() -> UInt64? {
        while let top = heap.first {
            if top.conn.registered && top.conn.armedDeadline == top.deadline { return top.deadline }
            _ = popMin()
        }
        return nil
    }

    /// Pops one connection whose armed deadline is due at `now`; disarms it.
    mutating func popDue(now: UInt64) -> QUICConnection? {
        while let top = heap.first, top.deadline <= now {
            let e = popMin()
            if e.conn.registered && e.conn.armedDeadline == e.deadline {
                e.conn.armedDeadline = UInt64.max
                return e.conn
            }
        }
        return nil
    }

    /// Drops stale entries.
    mutating func compact() {
        let valid = heap.filter { $0.conn.registered && $0.conn.armedDeadline == $0.deadline }
        heap.removeAll(keepingCapacity: true)
        for e in valid { push(e.deadline, e.conn) }
    }
}
