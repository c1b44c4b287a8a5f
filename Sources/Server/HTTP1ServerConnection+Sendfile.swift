#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import HTTP1
import IOCore

extension HTTP1ServerConnection {
    /// Sends the protocol's pending file region (`HTTP1Connection.fileRegion`) with
    /// sendfile(2), straight from the page cache to the socket, until it is done or the
    /// socket is full (EAGAIN: the caller keeps EPOLLOUT armed and the write timeout runs).
    /// sendfile on a non-blocking socket does not block, so it stays on the loop thread.
    ///
    /// Returns false when the connection was closed: a socket error, or the file ended before
    /// the region did (it was truncated after the head went out — the client sees a body
    /// shorter than its Content-Length and the connection closing, RFC 9112 §6.3).
    func sendPendingFile(_ c: HTTP1Connection) -> Bool {
        while let region = c.fileRegion {
            var offset = region.offset
            let count = Int(min(region.remaining, 1 << 30))
            let r: IOResult
            do {
                r = try Socket.sendfile(fd, file: region.file.fd, offset: &offset, count: count)
            } catch {
                close()
                return false
            }
            switch r {
            case .wouldBlock:
                return true
            case .done(0):
                close()
                return false
            case .done(let n):
                noteWriteProgress()
                c.fileRegionAdvanced(by: n)
            }
        }
        return true
    }
}

extension HTTP1ServerConnection {
    /// The peer took bytes: the write timeout counts from now. It is a stall timeout (Caddy's
    /// idle write deadline), not a limit on the whole transfer — a 100 MiB file to a slow
    /// client may take minutes while making progress. Only a connection already waiting on
    /// the write timeout is touched (a pointer compare on the fast path).
    @inline(__always)
    func noteWriteProgress() {
        if isArmed(in: ctx.writeTimeouts) { ctx.writeTimeouts.arm(self, now: Clock.monotonicNanos()) }
    }

    /// Writes `output` with send(2) `MSG_MORE` (more data — the file region — follows).
    func writeCorked() throws(IOError) -> IOResult {
        let n = output.readableBytes
        if n == 0 { return .done(0) }
        let p = output.base + output.readerIndex
        let r = try syscall("send") { Glibc.send(fd, p, n, Int32(MSG_MORE)) }
        if case .done(let w) = r { output.consume(w) }
        return r
    }
}
