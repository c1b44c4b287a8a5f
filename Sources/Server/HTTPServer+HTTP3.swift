#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP3
import IOCore

/// HTTP/3 listeners: every loop serves every UDP socket with its own `HTTP3Listener`; the
/// listeners of one socket form an `HTTP3SocketGroup` (connection-ID steering between the
/// loops). A reload updates what new connections are served with and stops the listeners
/// the new config dropped.
extension HTTPServer {
    /// Joins (creating it on first use) the group of datagram socket `fd` (any thread).
    func joinH3Group(_ fd: Int32) throws(IOError) -> HTTP3SocketGroup {
        h3GroupLock.lock()
        defer { h3GroupLock.unlock() }
        if let g = h3Groups[fd] {
            g.members += 1
            return g
        }
        let g = try HTTP3SocketGroup(fd: fd, loops: group.loops.count, earlyData: HTTP3Configuration().settings.earlyData)
        g.members = 1
        h3Groups[fd] = g
        return g
    }

    /// A listener of `g` stopped for good; the last one forgets the group.
    func leaveH3Group(_ g: HTTP3SocketGroup) {
        h3GroupLock.lock()
        defer { h3GroupLock.unlock() }
        g.members -= 1
        if g.members <= 0, h3Groups[g.fd] === g { h3Groups[g.fd] = nil }
    }

    /// Loop `i`'s HTTP/3 listeners for `served` (loop thread, or before the loops run).
    func startHTTP3(loop i: Int, runtime: ServerRuntime, listeners served: [ServedListener]) {
        for l in served where l.isDatagram {
            if let existing = loopH3[i][l.fd] {
                if l.serverIndex < runtime.servers.count {
                    existing.update(server: runtime.servers[l.serverIndex], runtime: runtime)
                }
                continue
            }
            guard l.serverIndex < runtime.servers.count else { continue }
            do {
                let g = try joinH3Group(l.fd)
                do {
                    let h = try HTTP3Listener(fd: l.fd, displayName: l.displayName, server: runtime.servers[l.serverIndex],
                                              runtime: runtime, context: contexts[i], group: g, index: i)
                    try h.start()
                    loopH3[i][l.fd] = h
                } catch {
                    leaveH3Group(g)
                    throw error
                }
            } catch {
                Log.error("http", "starting the HTTP/3 listener failed", [("addr", .string(l.displayName)), ("error", .string("\(error)"))])
            }
        }
        let keep = Set(served.filter(\.isDatagram).map(\.fd))
        for (fd, h) in loopH3[i] where !keep.contains(fd) {
            h.forceClose()
            leaveH3Group(h.group)
            loopH3[i][fd] = nil
        }
    }
}
