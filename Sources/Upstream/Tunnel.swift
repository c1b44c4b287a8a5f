#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTPCore
import IOCore
import Synchronization
import TLS

/// A bidirectional byte pipe between the client and the upstream after `101 Switching
/// Protocols` (WebSocket and any other `Upgrade`). Each direction has one buffer: a side is
/// read only while the buffer towards the other side has room, so memory stays bounded
/// (2 × `bufferSize`) whatever the peers do. EOF on one side is passed on as a write
/// shutdown of the other (half-close); the tunnel closes both sockets when both directions
/// ended or either side fails.
///
/// A TLS upstream (`https://`) keeps its `TLSConnection`: bytes read from it are decrypted
/// into the client's buffer, bytes for it are encrypted on the way out, and the client's EOF
/// becomes a close_notify before the write shutdown.
///
/// Owns both fds from `takeOver` / `setUpstream` on. Every open tunnel is listed in its
/// loop's `Tunnel.open` registry so that a graceful stop or reload can close them
/// (`closeAll(on:)`) when the grace period ends.
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
        /// TLS on this socket (the upstream end of an `https://` upstream).
        var tls: TLSConnection?

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

    /// `Tunnel.currentGeneration` when the tunnel opened (reloads close older ones).
    let generation: UInt64

    package init(loop: EventLoop) {
        self.loop = loop
        generation = Tunnel.currentGeneration.load(ordering: .relaxed)
    }

    /// Bumped by the server at every configuration swap.
    package static let currentGeneration = Atomic<UInt64>(0)

    deinit {
        if client.fd >= 0 { Glibc.close(client.fd) }
        if upstream.fd >= 0 { Glibc.close(upstream.fd) }
    }

    /// The upstream socket and the bytes it already sent after its 101 head (for the client).
    func setUpstream(fd: Int32, tls: TLSConnection?, pending bytes: UnsafeRawBufferPointer) {
        upstream.fd = fd
        upstream.tls = tls
        client.pending.append(bytes)
    }

    /// Called by the client protocol's driver after it wrote (or queued) the 101.
    package func takeOver(fd: Int32, tls: AnyObject?, fromClient: UnsafeRawBufferPointer, toClient: UnsafeRawBufferPointer) {
        client.fd = fd
        client.tls = tls as? TLSConnection
        // The 101 head goes first, then whatever the upstream sent after its head.
        if !toClient.isEmpty {
            let early = Array(client.pending.readable)
            client.pending.clear()
            client.pending.append(toClient)
            client.pending.append(early)
        }
        upstream.pending.append(fromClient)
        selfRetain = self
        Tunnel.registry(loop).add(self)
        guard register(client), register(upstream) else {
            close()
            return
        }
        // Records the client's TLS session already read but not yet decrypted (or decrypted
        // and still inside OpenSSL) belong to the tunnel now.
        if let t = client.tls, !t.input.isEmpty || t.hasPendingPlaintext {
            do {
                if try t.feed(into: upstream.pending).closeNotifyReceived { client.readEOF = true }
            } catch {
                close()
                return
            }
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
        if client.readEOF && upstream.readEOF && !hasOutput(client) && !hasOutput(upstream) { close() }
    }

    /// Reads from `e` into the other end's buffer while it has room.
    private func readEnd(_ e: End) {
        let dst = other(e).pending
        guard !e.readEOF, dst.readableBytes < Tunnel.bufferSize else { return }
        let r: IOResult
        do {
            if let t = e.tls {
                r = try Socket.read(e.fd, into: t.input, minimumSpace: 16384)
            } else {
                r = try Socket.read(e.fd, into: dst, minimumSpace: min(16384, Tunnel.bufferSize - dst.readableBytes + 1))
            }
        } catch {
            close()
            return
        }
        switch r {
        case .done(0):
            e.readEOF = true
        case .done:
            if let t = e.tls {
                do {
                    if try t.feed(into: dst).closeNotifyReceived { e.readEOF = true }
                } catch {
                    close()
                    return
                }
            }
            flushEnd(other(e))
        case .wouldBlock:
            break
        }
    }

    /// Writes what is pending for `e`; shuts its write side once the other end hit EOF.
    private func flushEnd(_ e: End) {
        let wire: ByteBuffer
        if let t = e.tls {
            do {
                if !e.pending.isEmpty { try t.write(from: e.pending) }
                if other(e).readEOF && !e.writeShut { t.shutdown() }
            } catch {
                close()
                return
            }
            wire = t.output
        } else {
            wire = e.pending
        }
        while !wire.isEmpty {
            do {
                if case .wouldBlock = try Socket.write(e.fd, from: wire) { break }
            } catch {
                close()
                return
            }
        }
        if wire.isEmpty && e.pending.isEmpty && other(e).readEOF && !e.writeShut {
            e.writeShut = true
            _ = shutdown(e.fd, Int32(SHUT_WR))
        }
    }

    /// Bytes waiting to be written to `e`'s socket (ciphertext included).
    private func hasOutput(_ e: End) -> Bool {
        !e.pending.isEmpty || !(e.tls?.output.isEmpty ?? true)
    }

    private func update(_ e: End) {
        guard e.registered else { return }
        var i: Interest = []
        if !e.readEOF && other(e).pending.readableBytes < Tunnel.bufferSize { i.insert(.read) }
        if hasOutput(e) { i.insert(.write) }
        if i != e.interest {
            e.interest = i
            loop.modify(fd: e.fd, interest: i)
        }
    }

    /// Closes both sockets.
    package func close() {
        if closed { return }
        closed = true
        if selfRetain != nil { Tunnel.registry(loop).remove(self) }
        client.tls = nil
        upstream.tls = nil
        for e in [client, upstream] where e.fd >= 0 {
            if e.registered { loop.deregister(fd: e.fd) }
            e.registered = false
            Glibc.close(e.fd)
            e.fd = -1
        }
        selfRetain = nil
    }
}

extension Tunnel {
    /// The open tunnels of one loop (loop-confined, reached through a thread-local like
    /// `UpstreamLoop`): a tunnel has left its HTTP connection, so the server's drain would not
    /// see it otherwise.
    final class Registry {
        var tunnels: [ObjectIdentifier: Tunnel] = [:]
        func add(_ t: Tunnel) { tunnels[ObjectIdentifier(t)] = t }
        func remove(_ t: Tunnel) { tunnels[ObjectIdentifier(t)] = nil }
    }

    static func registry(_ loop: EventLoop) -> Registry { UpstreamLoop.of(loop).tunnels }

    /// Number of open tunnels on `loop` (the calling thread's loop).
    package static func openCount(on loop: EventLoop) -> Int { registry(loop).tunnels.count }

    /// Closes every tunnel of `loop` (which must be the calling thread's loop), e.g. when a
    /// graceful stop's grace period ends or a reload retires the configuration they started
    /// under (Caddy closes upgraded streams when its config unloads). `olderThan`: only
    /// tunnels opened before that runtime generation (nil: all).
    package static func closeAll(on loop: EventLoop, olderThan generation: UInt64? = nil) {
        let r = registry(loop)
        for t in Array(r.tunnels.values) where generation.map({ t.generation < $0 }) ?? true {
            t.close()
        }
    }
}
