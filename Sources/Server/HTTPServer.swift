#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Config
import EventLoop
import HTTPCore
import IOCore

/// A listening socket the server serves, already open (inherited or bound by Berth).
package struct ServedListener: Sendable {
    /// The listening fd.
    package var fd: Int32
    /// Index of the `ServerConfig` / `RuntimeServer` it belongs to.
    package var serverIndex: Int
    /// Protocols spoken on it.
    package var protocols: [HTTPProtocolName]
    /// How the user named it (`fd/3`, `127.0.0.1:8080`), for logs.
    package var displayName: String
    /// True when Berth opened it (and so closes it at exit); inherited sockets are never closed.
    package var ownedByBerth: Bool
    package init(fd: Int32, serverIndex: Int, protocols: [HTTPProtocolName], displayName: String, ownedByBerth: Bool) {
        self.fd = fd
        self.serverIndex = serverIndex
        self.protocols = protocols
        self.displayName = displayName
        self.ownedByBerth = ownedByBerth
    }
}

/// Creates the protocol connection for an accepted socket.
package protocol ConnectionFactory: Sendable {
    func makeConnection(fd: Int32, peer: SocketAddress?, listener: ServedListener, server: RuntimeServer,
                        runtime: ServerRuntime, context: LoopContext)
}

/// The composition root at run time: event loops, listeners, the current runtime, and
/// graceful shutdown.
package final class HTTPServer: AcceptDelegate, @unchecked Sendable {
    package let group: EventLoopGroup
    package private(set) var contexts: [LoopContext] = []
    package let listeners: [ServedListener]
    private var loopListeners: [[Listener]] = []
    private let factory: any ConnectionFactory
    private let limits: ServerLimits
    private let perLoopMaxConnections: Int
    /// A pipe loops write to when they have drained; the main thread polls it.
    private var drainPipe: (read: Int32, write: Int32) = (-1, -1)

    package init(runtime: ServerRuntime, listeners: [ServedListener], loopCount: Int, limits: ServerLimits,
                 factory: any ConnectionFactory, logFD: Int32 = 2) throws(IOError) {
        self.group = try EventLoopGroup(count: loopCount)
        self.listeners = listeners
        self.factory = factory
        self.limits = limits
        self.perLoopMaxConnections = limits.maxConnections > 0
            ? max(1, (limits.maxConnections + group.loops.count - 1) / group.loops.count) : Int.max
        for loop in group.loops {
            contexts.append(LoopContext(loop: loop, runtime: runtime, limits: limits, logFD: logFD))
        }
        var fds: [Int32] = [0, 0]
        if berth_pipe2(&fds, O_CLOEXEC | O_NONBLOCK) != 0 { throw IOError("pipe2", errno: errno) }
        drainPipe = (fds[0], fds[1])
    }

    deinit {
        if drainPipe.read >= 0 { close(drainPipe.read); close(drainPipe.write) }
    }

    /// Registers every stream listener on every loop and starts the loop threads.
    package func start() throws(IOError) {
        loopListeners = []
        for (i, loop) in group.loops.enumerated() {
            var ls: [Listener] = []
            for (tag, l) in listeners.enumerated() {
                let listener = Listener(fd: l.fd, loop: loop, delegate: self, tag: tag)
                listener.onError = { err in
                    let msg = "{\"level\":\"error\",\"logger\":\"http\",\"msg\":\"accept: \(err)\"}\n"
                    _ = msg.withCString { write(2, $0, strlen($0)) }
                }
                try listener.start()
                ls.append(listener)
            }
            loopListeners.append(ls)
            _ = i
        }
        group.start()
    }

    package func accepted(fd: Int32, peer: SocketAddress?, listener: Listener, loop: EventLoop) {
        let ctx = contexts[loop.index]
        if ctx.draining || ctx.connectionCount >= perLoopMaxConnections {
            close(fd)
            return
        }
        let served = listeners[listener.tag]
        let runtime = ctx.runtime
        guard served.serverIndex < runtime.servers.count else {
            close(fd)
            return
        }
        factory.makeConnection(fd: fd, peer: peer, listener: served, server: runtime.servers[served.serverIndex],
                               runtime: runtime, context: ctx)
    }

    /// Graceful shutdown, called from the main thread: stop accepting everywhere, let in-flight
    /// requests finish for up to `graceMilliseconds`, then close what is left and stop the loops.
    /// Returns true when every connection finished within the grace period.
    @discardableResult
    package func shutdown(graceMilliseconds: Int) -> Bool {
        let w = drainPipe.write
        for (i, loop) in group.loops.enumerated() {
            let ctx = contexts[i]
            let ls = i < loopListeners.count ? loopListeners[i] : []
            nonisolated(unsafe) let unsafeCtx = ctx
            nonisolated(unsafe) let unsafeLs = ls
            loop.execute {
                for l in unsafeLs { l.stop() }
                unsafeCtx.beginDrain {
                    var b: UInt8 = 1
                    _ = write(w, &b, 1)
                }
            }
        }
        var drained = 0
        let deadline = Deadline.after(milliseconds: graceMilliseconds)
        while drained < group.loops.count {
            let now = Deadline.now()
            if now >= deadline { break }
            var pfd = pollfd(fd: drainPipe.read, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min(Int((deadline.nanos - now.nanos) / 1_000_000) + 1, 60_000))
            let r = poll(&pfd, 1, ms)
            if r > 0 {
                var buf = [UInt8](repeating: 0, count: 64)
                let n = read(drainPipe.read, &buf, 64)
                if n > 0 { drained += n }
            }
        }
        let clean = drained >= group.loops.count
        for (i, loop) in group.loops.enumerated() {
            nonisolated(unsafe) let unsafeCtx = contexts[i]
            loop.execute { unsafeCtx.closeAll() }
        }
        group.stop()
        group.join()
        for l in listeners where l.ownedByBerth { close(l.fd) }
        return clean
    }
}

extension HTTPServer {
    /// Makes `runtime` the one new connections use, on every loop (connections already open keep
    /// theirs).
    package func swapRuntime(_ runtime: ServerRuntime) {
        for (i, loop) in group.loops.enumerated() {
            nonisolated(unsafe) let ctx = contexts[i]
            loop.execute { ctx.runtime = runtime }
        }
    }
}
