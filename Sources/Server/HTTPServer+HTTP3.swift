#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import IOCore

/// HTTP/3 listeners: each UDP socket belongs to one loop (`fd % loops`, stable across
/// reloads), where its `HTTP3Listener` lives; a reload updates what new connections are
/// served with and stops the listeners the new config dropped.
extension HTTPServer {
    /// The loop that serves datagram socket `fd`.
    func h3LoopIndex(_ fd: Int32) -> Int { Int(fd) % group.loops.count }

    /// Loop `i`'s HTTP/3 listeners for `served` (loop thread, or before the loops run).
    func startHTTP3(loop i: Int, runtime: ServerRuntime, listeners served: [ServedListener]) {
        for l in served where l.isDatagram && h3LoopIndex(l.fd) == i {
            if let existing = loopH3[i][l.fd] {
                if l.serverIndex < runtime.servers.count {
                    existing.update(server: runtime.servers[l.serverIndex], runtime: runtime)
                }
                continue
            }
            guard l.serverIndex < runtime.servers.count else { continue }
            do {
                let h = try HTTP3Listener(fd: l.fd, displayName: l.displayName, server: runtime.servers[l.serverIndex],
                                          runtime: runtime, context: contexts[i])
                try h.start()
                loopH3[i][l.fd] = h
            } catch {
                Log.error("http", "starting the HTTP/3 listener failed", [("addr", .string(l.displayName)), ("error", .string("\(error)"))])
            }
        }
        let keep = Set(served.filter(\.isDatagram).map(\.fd))
        for (fd, h) in loopH3[i] where !keep.contains(fd) {
            h.forceClose()
            loopH3[i][fd] = nil
        }
    }
}
