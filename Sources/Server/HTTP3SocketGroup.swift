#if canImport(Glibc)
import Glibc
#endif
import CLinux
import EventLoop
import HTTP3
import IOCore

/// One UDP socket served by every event loop: each loop has its own `HTTP3Listener` and
/// `QUICEndpoint`, all of them read the socket (EPOLLEXCLUSIVE wakes one), and a datagram
/// whose connection belongs to another loop (`QUICSteering.owner`) is copied into that
/// loop's inbox. Replies are sent from the owning loop on the same socket (UDP sends need no
/// coordination). So one inherited `fdgram/N` uses every core, as TCP listeners do.
final class HTTP3SocketGroup: @unchecked Sendable {
    let fd: Int32
    let steering: QUICSteering
    /// One per loop; created with the group, so a loop may forward before the owner's
    /// listener has started (its packets wait).
    let inboxes: [HTTP3Inbox]
    /// Listeners that joined and have not left (under `HTTPServer`'s group lock).
    var members = 0

    init(fd: Int32, loops: Int, earlyData: Bool) throws(IOError) {
        self.fd = fd
        steering = QUICSteering(count: loops, earlyData: earlyData)
        var boxes: [HTTP3Inbox] = []
        for _ in 0..<steering.count { boxes.append(try HTTP3Inbox()) }
        inboxes = boxes
    }
}

/// Datagrams handed to one loop by the others: batches move producer → `pending` → the
/// owning loop, and back through `free`, so steady-state forwarding allocates nothing. An
/// eventfd wakes the owner once per burst. When the owner falls behind by `maxPending`
/// batches, further ones are dropped (UDP semantics: QUIC retransmits).
final class HTTP3Inbox: @unchecked Sendable {
    let eventFD: Int32
    private let lock = Mutex()
    private var pending: [UDPReceiveBatch] = []
    private var free: [UDPReceiveBatch] = []
    private var signalled = false
    static let maxPending = 32
    static let batchSize = 64
    /// Batches dropped because the owner was too far behind (tests and diagnostics).
    private(set) var dropped = 0

    init() throws(IOError) {
        let e = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if e < 0 { throw IOError("eventfd", errno: errno) }
        eventFD = e
        pending.reserveCapacity(HTTP3Inbox.maxPending)
    }

    deinit { close(eventFD) }

    /// An empty batch to fill (producer side, any loop).
    func takeFree() -> UDPReceiveBatch {
        lock.lock()
        let b = free.popLast()
        lock.unlock()
        return b ?? UDPReceiveBatch(count: HTTP3Inbox.batchSize)
    }

    /// Hands a filled batch to the owner and wakes it if it was not already woken.
    func post(_ b: UDPReceiveBatch) {
        lock.lock()
        if pending.count >= HTTP3Inbox.maxPending {
            b.filled = 0
            free.append(b)
            dropped += 1
            lock.unlock()
            return
        }
        pending.append(b)
        let wake = !signalled
        signalled = true
        lock.unlock()
        if wake {
            var one: UInt64 = 1
            _ = write(eventFD, &one, 8)
        }
    }

    /// Owner side: everything posted so far (appended to `into`, which the caller empties).
    func take(into out: inout [UDPReceiveBatch]) {
        var drain: UInt64 = 0
        _ = read(eventFD, &drain, 8)
        lock.lock()
        out.append(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
        signalled = false
        lock.unlock()
    }

    /// Owner side: processed batches go back to the free list.
    func recycle(_ batches: [UDPReceiveBatch]) {
        lock.lock()
        for b in batches {
            b.filled = 0
            free.append(b)
        }
        lock.unlock()
    }
}
