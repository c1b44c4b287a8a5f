import Foundation
import Glibc
import IOCore
import Testing

@testable import EventLoop

/// Collects accepted connections from every loop.
final class CollectingDelegate: AcceptDelegate, @unchecked Sendable {
    struct Accepted {
        var peer: SocketAddress?
        var loopIndex: Int
        var tag: Int
        var onLoopThread: Bool
        var nonBlocking: Bool
    }
    let accepted = Locked<[Accepted]>([])
    func accepted(fd: Int32, peer: SocketAddress?, listener: Listener, loop: EventLoop) {
        let nb = fcntl(fd, F_GETFL) & O_NONBLOCK != 0
        close(fd)
        accepted.withLock {
            $0.append(Accepted(peer: peer, loopIndex: loop.index, tag: listener.tag, onLoopThread: loop.inLoopThread, nonBlocking: nb))
        }
    }
}

@Suite("Listener")
struct ListenerTests {
    @Test func everyConnectionIsAcceptedExactlyOnceAcrossTwoLoops() throws {
        let listening = try Socket.listenTCP(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let port = boundPort(listening.raw)
        let delegate = CollectingDelegate()
        let group = try EventLoopGroup(count: 2)
        let listeners = group.loops.map { Listener(fd: listening.raw, loop: $0, delegate: delegate, tag: 7) }
        for l in listeners { l.acceptBatch = 4 }
        group.start()
        let started = Locked(0)
        for listener in listeners {
            let l = Unchecked(listener)
            listener.loop.execute {
                do { try l.value.start(); try l.value.start() } catch { return }  // second start is a no-op
                started.withLock { $0 += 1 }
            }
        }
        #expect(waitUntil { started.current == 2 })

        let count = 300
        var clientPorts: [Int] = []
        var clients: [Int32] = []
        for _ in 0..<count {
            let c = blockingConnect(port: port)
            clients.append(c)
            clientPorts.append(Socket.localAddress(c)!.port)
        }
        #expect(waitUntil { delegate.accepted.current.count >= count })
        usleep(50_000)
        let got = delegate.accepted.current
        #expect(got.count == count)
        #expect(got.map { $0.peer?.port ?? -1 }.sorted() == clientPorts.sorted())
        #expect(got.allSatisfy { $0.peer?.ipString == "127.0.0.1" })
        #expect(got.allSatisfy { $0.tag == 7 && $0.onLoopThread && $0.nonBlocking })
        #expect(Set(got.map(\.loopIndex)).isSubset(of: [0, 1]))
        for c in clients { close(c) }

        let stopped = Locked(0)
        for listener in listeners {
            let l = Unchecked(listener)
            listener.loop.execute { l.value.stop(); l.value.stop(); stopped.withLock { $0 += 1 } }
        }
        #expect(waitUntil { stopped.current == 2 })
        // After stop the socket stays open but nobody accepts.
        let late = blockingConnect(port: port)
        defer { close(late) }
        usleep(50_000)
        #expect(delegate.accepted.current.count == count)
        #expect(pollReadable(listening.raw))
        group.stop()
        group.join()
        withExtendedLifetime(listeners) {}
    }

    @Test func unixPeersAreReported() throws {
        let path = tempPath("listener") + ".sock"
        defer { unlink(path) }
        let listening = try Socket.listenUnix(path: path)
        let delegate = CollectingDelegate()
        let t = try LoopThread()
        defer { t.stop() }
        let listener = Unchecked(Listener(fd: listening.raw, loop: t.loop, delegate: delegate, tag: 1))
        try t.sync { try listener.value.start() }
        // A named client first, then an unnamed one: the second must not inherit the first's path.
        let clientPath = tempPath("client") + ".sock"
        defer { unlink(clientPath) }
        let named = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(named) }
        #expect(SocketAddress.unix(path: clientPath).withSockAddr { sa, len in bind(named, sa, len) } == 0)
        #expect(SocketAddress.unix(path: path).withSockAddr { sa, len in connect(named, sa, len) } == 0)
        #expect(waitUntil { delegate.accepted.current.count == 1 })
        let unnamed = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(unnamed) }
        #expect(SocketAddress.unix(path: path).withSockAddr { sa, len in connect(unnamed, sa, len) } == 0)
        #expect(waitUntil { delegate.accepted.current.count == 2 })
        let peers = delegate.accepted.current.map(\.peer)
        #expect(peers[0] == .unix(path: clientPath))
        #expect(peers[1] == .unix(path: ""))
        try t.sync { listener.value.stop() }
    }
}
