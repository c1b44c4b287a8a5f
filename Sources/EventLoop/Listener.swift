#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Receives connections accepted by a `Listener` on the loop that accepted them.
package protocol AcceptDelegate: AnyObject {
    /// A new connection: `fd` is non-blocking and close-on-exec and now owned by the delegate.
    func accepted(fd: Int32, peer: SocketAddress?, listener: Listener, loop: EventLoop)
}

/// One loop's registration of a shared listening socket. Every loop registers the same socket
/// with EPOLLEXCLUSIVE, so the kernel wakes one loop per incoming connection.
package final class Listener: EventHandler {
    /// The listening socket (not owned: the server's listener table owns it).
    package let fd: Int32
    /// The loop this registration belongs to.
    package unowned let loop: EventLoop
    /// Who gets the accepted connections.
    package unowned let delegate: AcceptDelegate
    /// Free-form tag the server uses to find its per-listener settings.
    package let tag: Int
    private let peer = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    private var registered = false
    /// Max connections accepted per wake-up. 1 (nginx's default, `multi_accept off`): the
    /// socket is level-triggered, so a backlog wakes the loop again at once, while a lone new
    /// connection costs one accept4 instead of two (the second one only saying EAGAIN).
    package var acceptBatch = 1
    /// Errors that are not EAGAIN (EMFILE…) are reported here; accepting pauses briefly.
    package var onError: ((IOError) -> Void)?

    package init(fd: Int32, loop: EventLoop, delegate: AcceptDelegate, tag: Int) {
        self.fd = fd
        self.loop = loop
        self.delegate = delegate
        self.tag = tag
    }

    deinit { peer.deallocate() }

    /// Starts accepting on the loop (call on the loop thread).
    package func start() throws(IOError) {
        guard !registered else { return }
        try loop.register(fd: fd, interest: [.acceptable, .exclusive], handler: self)
        registered = true
    }

    /// Stops accepting (call on the loop thread); the socket itself stays open.
    package func stop() {
        guard registered else { return }
        loop.deregister(fd: fd)
        registered = false
    }

    package func handleEvents(_ events: UInt32) {
        var n = 0
        while n < acceptBatch {
            let r: IOResult
            var peerLength = socklen_t(0)
            do {
                r = try Socket.accept(fd, peer: peer, peerLength: &peerLength)
            } catch {
                if error.errno == ECONNABORTED || error.errno == EPROTO { continue }
                onError?(error)
                if error.errno == EMFILE || error.errno == ENFILE || error.errno == ENOBUFS || error.errno == ENOMEM {
                    // Back off: stop watching for 100 ms so the loop does not spin.
                    stop()
                    loop.schedule(afterMilliseconds: 100) { [weak self] in try? self?.start() }
                }
                return
            }
            guard case .done(let cfd) = r else { return }
            let addr = SocketAddress(storage: UnsafeRawPointer(peer), length: Int(peerLength))
            delegate.accepted(fd: Int32(cfd), peer: addr, listener: self, loop: loop)
            n += 1
        }
    }
}
