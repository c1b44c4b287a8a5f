#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTPCore
import IOCore

/// A bidirectional byte pipe between the client and the upstream after `101 Switching
/// Protocols` (WebSocket and any other `Upgrade`). Each direction has one buffer: a side is
/// read only while the buffer towards the other side has room, so memory stays bounded
/// (2 × `bufferSize`) whatever the peers do. EOF on one side is passed on as a write
/// shutdown of the other (half-close); the tunnel closes both sockets when both directions
/// ended or either side fails.
///
/// Owns both fds from `takeOver` / `setUpstream` on.
package final class Tunnel: UpgradeReceiver {
    /// One socket of the tunnel and the bytes waiting to be written to it.
    final class End: EventHandler {
        unowned let tunnel: Tunnel
        var fd: Int32 = -1
        /// Bytes for this end (read from the other one).
        let pending: ByteBuffer
        var readEOF = false
        var writeShut = false
        var interest: Interest = []
        var registered = false

        init(_ t: Tunnel, capacity: Int) {
            tunnel = t
            pending = ByteBuffer(capacity: capacity)
        }

        func handleEvents(_ events: UInt32) { tunnel.events(self, events) }
    }

    static let bufferSize = 64 * 1024
    let loop: EventLoop
    private lazy var client = End(self, capacity: Tunnel.bufferSize)
    private lazy var upstream = End(self, capacity: Tunnel.bufferSize)
    private var closed = false
    /// Keeps the tunnel alive while its fds are registered (the loop holds the Ends, the
    /// Ends hold the tunnel unowned).
    private var selfRetain: Tunnel?

    package init(loop: EventLoop) {
        self.loop = loop
    }

    deinit {
        if client.fd >= 0 { Glibc.close(client.fd) }
        if upstream.fd >= 0 { Glibc.close(upstream.fd) }
    }

    /// The upstream socket and the bytes it already sent after its 101 head (for the client).
    func setUpstream(fd: Int32, pending bytes: UnsafeRawBufferPointer) {
        upstream.fd = fd
        client.pending.append(bytes)
    }

    /// Called by the client protocol's driver after it wrote (or queued) the 101.
    package func takeOver(fd: Int32, fromClient: UnsafeRawBufferPointer, toClient: UnsafeRawBufferPointer) {
        client.fd = fd
        // The 101 head goes first, then whatever the upstream sent after its head.
        if !toClient.isEmpty {
            let early = Array(client.pending.readable)
            client.pending.clear()
            client.pending.append(toClient)
            client.pending.append(early)
        }
        upstream.pending.append(fromClient)
        selfRetain = self
        guard register(client), register(upstream) else {
            close()
            return
        }
        flushEnd(client)
        flushEnd(upstream)
        update(client)
        update(upstream)
    }

    private func register(_ e: End) -> Bool {
        guard e.fd >= 0 else { return false }
        do {
            try loop.register(fd: e.fd, interest: [], handler: e)
            e.registered = true
            return true
        } catch {
            return false
        }
    }

    private func other(_ e: End) -> End { e === client ? upstream : client }

    fileprivate func events(_ e: End, _ events: UInt32) {
        if closed { return }
        if events & EventBits.writable != 0 { flushEnd(e) }
        if closed { return }
        if events & (EventBits.readable | EventBits.hangup | EventBits.error) != 0 { readEnd(e) }
        if closed { return }
        update(client)
        update(upstream)
        if client.readEOF && upstream.readEOF && client.pending.isEmpty && upstream.pending.isEmpty { close() }
    }

    /// Reads from `e` into the other end's buffer while it has room.
    private func readEnd(_ e: End) {
        let dst = other(e).pending
        guard !e.readEOF, dst.readableBytes < Tunnel.bufferSize else { return }
        let r: IOResult
        do {
            r = try Socket.read(e.fd, into: dst, minimumSpace: min(16384, Tunnel.bufferSize - dst.readableBytes + 1))
        } catch {
            close()
            return
        }
        switch r {
        case .done(0):
            e.readEOF = true
        case .done:
            flushEnd(other(e))
        case .wouldBlock:
            break
        }
    }

    /// Writes what is pending for `e`; shuts its write side once the other end hit EOF.
    private func flushEnd(_ e: End) {
        while !e.pending.isEmpty {
            do {
                if case .wouldBlock = try Socket.write(e.fd, from: e.pending) { break }
            } catch {
                close()
                return
            }
        }
        if e.pending.isEmpty && other(e).readEOF && !e.writeShut {
            e.writeShut = true
            _ = shutdown(e.fd, Int32(SHUT_WR))
        }
    }

    private func update(_ e: End) {
        guard e.registered else { return }
        var i: Interest = []
        if !e.readEOF && other(e).pending.readableBytes < Tunnel.bufferSize { i.insert(.read) }
        if !e.pending.isEmpty { i.insert(.write) }
        if i != e.interest {
            e.interest = i
            loop.modify(fd: e.fd, interest: i)
        }
    }

    /// Closes both sockets.
    package func close() {
        if closed { return }
        closed = true
        for e in [client, upstream] where e.fd >= 0 {
            if e.registered { loop.deregister(fd: e.fd) }
            e.registered = false
            Glibc.close(e.fd)
            e.fd = -1
        }
        selfRetain = nil
    }
}
