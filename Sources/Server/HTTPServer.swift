#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Config
import EventLoop
import HTTPCore
import IOCore
import Upstream

/// A listening socket the server serves, already open (inherited or bound by Berth).
package struct ServedListener: Sendable {
    /// The listening fd.
    package var fd: Int32
    /// Index of the `ServerConfig` / `RuntimeServer` it belongs to.
    package var serverIndex: Int
    /// Protocols spoken on it.
    package var protocols: [HTTPProtocolName]
    /// How the user named it (`fd/3`, `127.0.0.1:8080`), for logs; also its identity across
    /// reloads for sockets Berth binds itself.
    package var displayName: String
    /// True when Berth opened it (and so closes it when no config uses it any more); inherited
    /// sockets are never closed.
    package var ownedByBerth: Bool
    /// A UDP socket serving HTTP/3 (no accept; `HTTP3Listener`).
    package var isDatagram = false
    /// `Alt-Svc` value for h1/h2 responses on this listener (its server also serves h3).
    package var altSvc: [UInt8]? = nil
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

/// What a loop serves: the runtime and the listeners bound to its servers. Swapped whole.
final class Generation: @unchecked Sendable {
    let runtime: ServerRuntime
    let listeners: [ServedListener]
    init(runtime: ServerRuntime, listeners: [ServedListener]) {
        self.runtime = runtime
        self.listeners = listeners
    }
}

/// The composition root at run time: event loops, listeners, the current runtime, reload and
/// graceful shutdown. Methods without a loop-thread note are called from the control thread.
package final class HTTPServer: AcceptDelegate, @unchecked Sendable {
    package let group: EventLoopGroup
    package private(set) var contexts: [LoopContext] = []
    private let factory: any ConnectionFactory
    private let perLoopMaxConnections: Int
    /// Per loop: the listener registrations and the generation they serve (loop thread only).
    private var loopListeners: [[Listener]]
    private var loopGenerations: [Generation]
    /// Per loop: HTTP/3 listeners by UDP fd (loop thread only; see HTTPServer+HTTP3.swift).
    var loopH3: [[Int32: HTTP3Listener]]
    /// HTTP/3 socket groups by UDP fd (under `h3GroupLock`; see HTTPServer+HTTP3.swift).
    var h3Groups: [Int32: HTTP3SocketGroup] = [:]
    let h3GroupLock = Mutex()
    /// The generation most recently applied (control thread).
    package private(set) var listeners: [ServedListener]

    package init(runtime: ServerRuntime, listeners: [ServedListener], loopCount: Int, limits: ServerLimits,
                 factory: any ConnectionFactory) throws(IOError) {
        self.group = try EventLoopGroup(count: loopCount)
        self.listeners = listeners
        self.factory = factory
        self.perLoopMaxConnections = limits.maxConnections > 0
            ? max(1, (limits.maxConnections + group.loops.count - 1) / group.loops.count) : Int.max
        let gen = Generation(runtime: runtime, listeners: listeners)
        loopListeners = Array(repeating: [], count: group.loops.count)
        loopGenerations = Array(repeating: gen, count: group.loops.count)
        loopH3 = Array(repeating: [:], count: group.loops.count)
        for loop in group.loops {
            contexts.append(LoopContext(loop: loop, runtime: runtime, limits: limits))
        }
    }

    /// Registers every listener on every loop and starts the loop threads.
    package func start() throws(IOError) {
        for (i, loop) in group.loops.enumerated() {
            loopListeners[i] = try register(loopGenerations[i].listeners, on: loop)
            startHTTP3(loop: i, runtime: loopGenerations[i].runtime, listeners: loopGenerations[i].listeners)
        }
        group.start()
    }

    private func register(_ served: [ServedListener], on loop: EventLoop) throws(IOError) -> [Listener] {
        var ls: [Listener] = []
        for (tag, _) in served.enumerated() where !served[tag].isDatagram {
            let listener = Listener(fd: served[tag].fd, loop: loop, delegate: self, tag: tag)
            listener.onError = { err in
                Log.error("http", "accept failed", [("error", .string("\(err)"))])
            }
            do {
                try listener.start()
            } catch {
                for l in ls { l.stop() }
                throw error
            }
            ls.append(listener)
        }
        return ls
    }

    /// Loop thread: a connection arrived on one of this loop's listener registrations.
    ///
    /// Every loop watches the same listening socket with EPOLLEXCLUSIVE, and the kernel wakes
    /// the first loop that sleeps in epoll_wait: connections that arrive one at a time (a
    /// client pool opening its keep-alive connections, a proxy in front) would all land on
    /// one loop and leave the other cores idle. So the accepting loop keeps a connection only
    /// while no other loop has at least `balanceSlack` fewer; otherwise the connection goes to
    /// the least loaded loop (one hand-off per connection, only while the loops are uneven).
    package func accepted(fd: Int32, peer: SocketAddress?, listener: Listener, loop: EventLoop) {
        let i = loop.index
        let ctx = contexts[i]
        ctx.acceptedTotal &+= 1
        let gen = loopGenerations[i]
        if contexts.count > 1 && !ctx.draining {
            let mine = ctx.load.current
            var best = i
            var bestLoad = mine
            for j in contexts.indices where j != i {
                let l = contexts[j].load.current
                if l < bestLoad { best = j; bestLoad = l }
            }
            if best != i && mine - bestLoad >= HTTPServer.balanceSlack {
                handOff(fd: fd, peer: peer, tag: listener.tag, generation: gen, to: best)
                return
            }
        }
        serve(fd: fd, peer: peer, tag: listener.tag, generation: gen, context: ctx)
    }

    /// How much busier than the least loaded loop the accepting loop may be before it hands a
    /// new connection over (2: a lone short-lived connection is never moved).
    static let balanceSlack = 2

    /// Moves an accepted connection to loop `j` (counted there at once, so that loops
    /// accepting at the same time do not all pick the same target).
    private func handOff(fd: Int32, peer: SocketAddress?, tag: Int, generation gen: Generation, to j: Int) {
        let target = contexts[j]
        target.load.add(1)
        let server = self
        target.loop.execute {
            let ctx = server.contexts[j]
            ctx.load.add(-1)
            server.serve(fd: fd, peer: peer, tag: tag, generation: gen, context: ctx)
        }
    }

    /// Loop thread of `ctx`: makes the protocol connection (or closes the socket when the loop
    /// drains, is full, or the listener is gone from the generation it was accepted under).
    private func serve(fd: Int32, peer: SocketAddress?, tag: Int, generation gen: Generation, context ctx: LoopContext) {
        if ctx.draining || ctx.connectionCount >= perLoopMaxConnections || tag >= gen.listeners.count {
            close(fd)
            return
        }
        let served = gen.listeners[tag]
        guard served.serverIndex < gen.runtime.servers.count else {
            close(fd)
            return
        }
        factory.makeConnection(fd: fd, peer: peer, listener: served, server: gen.runtime.servers[served.serverIndex],
                               runtime: gen.runtime, context: ctx)
    }

    /// Swaps in a new runtime and listener set on every loop, each loop atomically: old
    /// registrations stop, new ones start, new connections use the new runtime; connections
    /// already open keep theirs. Listeners only the old set had and that Berth owns are closed
    /// once every loop has let go of them.
    package func apply(runtime: ServerRuntime, listeners new: [ServedListener]) {
        let old = listeners
        listeners = new
        let gen = Generation(runtime: runtime, listeners: new)
        let remaining = AtomicCountdown(group.loops.count)
        let stillUsed = Set(new.map(\.fd))
        let toClose = old.filter { $0.ownedByBerth && !stillUsed.contains($0.fd) }.map(\.fd)
        // WebSocket / Upgrade tunnels opened under the old configuration may stay open for the
        // new one's grace period, then they are closed (Caddy closes them when the old config
        // is cleaned up; a tunnel must never pin a retired configuration forever).
        let tunnelGeneration = Tunnel.currentGeneration.add(1, ordering: .relaxed).newValue
        let grace = runtime.config.gracePeriodMilliseconds
        for (i, loop) in group.loops.enumerated() {
            let server = self
            loop.execute {
                loop.schedule(afterMilliseconds: max(0, grace)) {
                    Tunnel.closeAll(on: loop, olderThan: tunnelGeneration)
                }
                for l in server.loopListeners[i] { l.stop() }
                server.loopGenerations[i] = gen
                server.contexts[i].runtime = runtime
                do {
                    server.loopListeners[i] = try server.register(new, on: loop)
                } catch {
                    Log.error("http", "registering listeners after reload failed", [("error", .string("\(error)"))])
                    server.loopListeners[i] = []
                }
                server.startHTTP3(loop: i, runtime: runtime, listeners: new)
                if remaining.decrement() { for fd in toClose { close(fd) } }
            }
        }
    }

    /// Open connections (TCP, QUIC) over every loop, and how many were ever accepted: `done`
    /// runs on the last loop to answer. Each loop counts its own, on its thread.
    package func activity(_ done: @escaping @Sendable (_ open: Int, _ accepted: Int) -> Void) {
        let tally = ActivityTally(loops: group.loops.count, done: done)
        for (i, loop) in group.loops.enumerated() {
            let server = self
            loop.execute {
                let ctx = server.contexts[i]
                var open = ctx.connectionCount - server.loopH3[i].count  // the UDP listeners are managed too
                var accepted = ctx.acceptedTotal
                for h in server.loopH3[i].values {
                    open += h.endpoint.connectionCount + h.endpoint.lingeringCount
                    accepted &+= h.endpoint.acceptedConnections
                }
                tally.add(open: open, accepted: accepted)
            }
        }
    }

    /// Whether every listener came from the service manager (so exiting loses nothing).
    package var allListenersInherited: Bool { !listeners.contains { $0.ownedByBerth } }

    /// Starts a graceful shutdown: every loop stops accepting and its connections finish their
    /// current request and close. `drained` runs (on a loop thread) once every loop is empty.
    package func beginShutdown(drained: @escaping @Sendable () -> Void) {
        let remaining = AtomicCountdown(group.loops.count)
        for (i, loop) in group.loops.enumerated() {
            let server = self
            loop.execute {
                for l in server.loopListeners[i] { l.stop() }
                server.loopListeners[i] = []
                server.contexts[i].beginDrain {
                    if remaining.decrement() { drained() }
                }
            }
        }
    }

    /// Closes whatever is still open, stops and joins the loop threads, and closes the
    /// listeners Berth opened. Blocks until the loops have exited.
    package func stopNow() {
        for (i, loop) in group.loops.enumerated() {
            nonisolated(unsafe) let ctx = contexts[i]
            loop.execute {
                ctx.closeAll()
                Tunnel.closeAll(on: loop)
            }
        }
        group.stop()
        group.join()
        for l in listeners where l.ownedByBerth { close(l.fd) }
    }
}

/// A thread-safe countdown (cold paths: reload and shutdown bookkeeping).
final class AtomicCountdown: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: Int
    init(_ n: Int) {
        value = n
        pthread_mutex_init(&mutex, nil)
    }
    deinit { pthread_mutex_destroy(&mutex) }
    /// Decrements; true for the call that reached zero.
    func decrement() -> Bool {
        pthread_mutex_lock(&mutex)
        value -= 1
        let done = value == 0
        pthread_mutex_unlock(&mutex)
        return done
    }
}

/// Sums per-loop activity counts; the last loop to report calls `done`.
final class ActivityTally: @unchecked Sendable {
    private let lock = Mutex()
    private var remaining: Int
    private var open = 0
    private var accepted = 0
    private let done: @Sendable (Int, Int) -> Void

    init(loops: Int, done: @escaping @Sendable (Int, Int) -> Void) {
        remaining = loops
        self.done = done
    }

    func add(open o: Int, accepted a: Int) {
        lock.lock()
        open += o
        accepted &+= a
        remaining -= 1
        let finished = remaining == 0
        let (fo, fa) = (open, accepted)
        lock.unlock()
        if finished { done(fo, fa) }
    }
}
